"""Client input never shapes the upstream URL.

A property over any model name, client path and query: the URL built keeps the
configured scheme, host, port and base path, and carries no query key the client
did not send itself (``key`` never). Then the real gateway with crafted Gemini
model names, in front of a recording upstream that must see nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from tests.conftest import KEY_ENV, PROVIDER_KEY, GatewayFactory
from tollhouse.errors import BadRequest
from tollhouse.gateway.upstream import upstream_url
from tollhouse.ingress import DIALECTS, Call
from tollhouse.providers import KINDS, Provider
from tollhouse.settings import ProviderSettings
from tollhouse.testing import BackgroundServer

BASES = [
    ("gemini", "http://127.0.0.1:9/gemini"),
    ("gemini", "https://generativelanguage.googleapis.com"),
    ("openai", "https://api.openai.com/v1"),
    ("openrouter", "https://openrouter.ai/api/v1"),
    ("anthropic", "http://[::1]:8443/anthropic"),
    ("openai-compatible", "http://127.0.0.1:11434/v1"),
]
hostile = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.sampled_from(
            ["..", ".", "/", "?", "#", "%2e%2e", "%2F", "@", ":", " ", "\\", "&key=x", "=", "x"]
        ),
        max_size=8,
    ).map("".join),
)
queries = st.one_of(
    st.just(""),
    st.text(max_size=30),
    st.lists(
        st.sampled_from(["alt=sse", "key=AIza", "&", "=", "#f", "a=%26key%3Dx", "x=1", "?"]),
        max_size=5,
    ).map("".join),
)


def provider(kind: str, base: str) -> Provider:
    return KINDS[kind](ProviderSettings(kind, kind, base))


def client_paths(model: str, version: str, stream: bool) -> list[str]:
    """The paths the gateway builds from a client's request naming ``model``."""
    call = Call(model=model, stream=stream, path=f"/{version}/models/{model}:generateContent")
    return [
        DIALECTS["gemini"].upstream_path(call, model),
        DIALECTS["gemini"].translated_target(model, stream)[0],
        "/" + model,
        f"/v1/{model}",
    ]


def assert_kept(built: str, base: str, client_query: str) -> None:
    want, got = urlsplit(base), urlsplit(built)
    parsed = URL(built, encoded=True)
    assert (got.scheme, got.netloc) == (want.scheme, want.netloc), built
    assert (parsed.scheme, parsed.host, parsed.port) == (
        URL(base).scheme,
        URL(base).host,
        URL(base).port,
    )
    assert got.fragment == "" and "#" not in built
    assert got.path.startswith(want.path + "/"), built
    segments = got.path[len(want.path) + 1 :].split("/")
    assert all(unquote(s) not in (".", "..") for s in segments), built
    sent = {k for k, _ in parse_qsl(got.query, keep_blank_values=True)}
    client = {k for k, _ in parse_qsl(client_query, keep_blank_values=True)}
    assert "key" not in sent and sent <= client, (built, client_query)


@given(
    st.sampled_from(BASES),
    hostile,
    queries,
    st.sampled_from(["v1beta", "v1", "v1alpha"]),
    st.booleans(),
)
def test_no_client_input_changes_host_base_path_or_query(
    base: tuple[str, str], model: str, query: str, version: str, stream: bool
) -> None:
    target = provider(*base)
    for path in client_paths(model, version, stream):
        try:
            built = upstream_url(target, path, query)
        except BadRequest as err:
            assert "'.' or '..'" in err.message
            continue
        assert_kept(built, target.base_url, query)


@given(st.sampled_from(["gemini-2.5-flash", "models/gemini-2.5-pro", "gemma_3-1.b"]), queries)
def test_a_valid_gemini_model_is_sent_as_it_is(model: str, query: str) -> None:
    target = provider("gemini", "http://127.0.0.1:9/gemini")
    call = Call(model=model, stream=True, path=f"/v1beta/models/{model}:streamGenerateContent")
    built = upstream_url(target, DIALECTS["gemini"].upstream_path(call, model), query)
    name = model.removeprefix("models/")
    assert urlsplit(built).path == f"/gemini/v1beta/models/{name}:streamGenerateContent"


def test_the_gateways_key_never_rides_in_the_url() -> None:
    target = provider("gemini", "http://127.0.0.1:9/gemini")
    built = upstream_url(target, "/v1beta/models/m:generateContent", "key=AIza&alt=sse&key=x")
    assert urlsplit(built).query == "alt=sse"


# --- the real gateway -------------------------------------------------------------------


class Recorder:
    """An upstream that records every request it gets and answers a client error."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.server = BackgroundServer(self._app)

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        return app

    async def _record(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.raw_path, request.headers.get("x-goog-api-key")))
        body = {"error": {"code": 400, "message": "recorded", "status": "INVALID_ARGUMENT"}}
        return web.json_response(body, status=400)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    found.server.start()
    yield found
    found.server.stop()


CRAFTED = {
    "x%2F..%2F..%2Fevil": "'/'",
    "models%2F..%2F..%2Fevil": "'/'",
    "a%3Fkey%3Dx%26b": "'?'",
    "gemini%23frag": "'#'",
    "%2e%2e": "'.' or '..'",
    "..%2e": "start with a letter or digit",
    "-x": "start with a letter or digit",
    "gemini%252e%252e": "'%'",
    "gemini%20flash": "' '",
    "gemini%40evil.example": "'@'",
    "gemini%5Cx": "'\\\\'",
}


async def _post_raw(url: str, paths: list[str]) -> list[tuple[int, Any]]:
    out = []
    async with aiohttp.ClientSession() as session:
        for path in paths:
            target = URL(url + path, encoded=True)  # sent as written, escapes and all
            body = {"contents": [{"parts": [{"text": "hi"}]}]}
            async with session.post(target, json=body) as response:
                out.append((response.status, await response.json()))
    return out


def test_crafted_gemini_models_never_reach_the_upstream(
    make_gateway: GatewayFactory, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    base = recorder.server.url + "/gemini"
    gemini = {"name": "gemini", "kind": "gemini", "base_url": base, "api_key_env": KEY_ENV}
    gateway = make_gateway({"providers": [gemini]})
    paths = [f"/v1beta/models/{model}:generateContent" for model in CRAFTED]
    answers = asyncio.run(_post_raw(gateway.url, paths))
    for (model, named), (status, body) in zip(CRAFTED.items(), answers, strict=True):
        assert status == 400, (model, body)
        assert body["error"]["status"] == "INVALID_ARGUMENT"
        assert named in body["error"]["message"] and "gemini-2.5-flash" in body["error"]["message"]
    assert recorder.seen == []
    good = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaClient"
    [(status, _)] = asyncio.run(_post_raw(gateway.url, [good]))
    assert status == 400  # the recorder's own answer, relayed
    [(_, raw, key)] = recorder.seen
    assert raw == "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert key == "AIzaClient"  # the client's own key, moved from the URL to the header
    assert json.dumps(recorder.seen).count("AIza") == 1


def test_a_bad_model_in_a_body_dialect_is_a_400_in_that_dialect(
    make_gateway: GatewayFactory,
) -> None:
    gateway = make_gateway()
    messages = [{"role": "user", "content": "hi"}]
    status, found = asyncio.run(
        _post_json(
            gateway.url + "/v1/chat/completions", {"model": "gpt-4o?mini", "messages": messages}
        )
    )
    assert status == 400 and "'?'" in found["error"]["message"]
    anthropic = {"model": "claude 4", "max_tokens": 5, "messages": messages}
    status, found = asyncio.run(_post_json(gateway.url + "/v1/messages", anthropic))
    assert status == 400 and found["type"] == "error" and "' '" in found["error"]["message"]
    assert gateway.last()["status"] == 400  # refused, and still on the books


async def _post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.json()
