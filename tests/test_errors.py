"""Bad input gets a clear error in the client's dialect; the gateway keeps serving."""

from __future__ import annotations

import http.client
import json
import sqlite3
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.conftest import ACME_KEY, PROVIDER_KEY, Harness, base_config
from tests.test_metering_e2e import an, oa
from tollhouse.simulator import Simulator
from tollhouse.testing import free_port


def raw_post(
    gateway: Harness, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    host, port = gateway.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(
        "POST",
        path,
        body=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {ACME_KEY}",
            **(headers or {}),
        },
    )
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data), dict(resp.getheaders())


def still_serving(gateway: Harness) -> None:
    reply = oa(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "still there?"}]
    )
    assert reply.choices[0].message.content


def test_malformed_json_openai_shape(gateway: Harness) -> None:
    status, body, headers = raw_post(gateway, "/v1/chat/completions", b'{"model": "gpt-4o",')
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]
    assert "x-tollhouse-request-id" in {k.lower() for k in headers}
    still_serving(gateway)
    assert gateway.rows()[0]["status"] == 400


def test_malformed_json_anthropic_shape(gateway: Harness) -> None:
    status, body, _ = raw_post(gateway, "/v1/messages", b"[1, 2]")
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def test_missing_model(gateway: Harness) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oa(gateway).chat.completions.create(model="", messages=[])
    assert '"model"' in str(info.value)


def test_model_of_a_provider_that_speaks_another_dialect(gateway: Harness) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        oa(gateway).chat.completions.create(
            model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}]
        )
    assert "/v1/messages" not in str(info.value) or "anthropic" in str(info.value)
    assert "provider 'anthropic'" in str(info.value)


def test_unknown_gemini_method(gateway: Harness) -> None:
    status, body, _ = raw_post(gateway, "/v1beta/models/gemini-2.5-flash:frobnicate", b"{}")
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"


def test_missing_provider_key(
    make_gateway: Any, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = base_config(simulator.url)
    config["providers"][1]["api_key_env"] = "TOLLHOUSE_TEST_UNSET_KEY"
    monkeypatch.delenv("TOLLHOUSE_TEST_UNSET_KEY", raising=False)
    gateway = make_gateway(config)
    with pytest.raises(anthropic.AuthenticationError) as info:
        an(gateway).messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert "TOLLHOUSE_TEST_UNSET_KEY" in str(info.value)
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_oversized_body(make_gateway: Any) -> None:
    gateway = make_gateway(max_body_mb=0.01)
    with pytest.raises(openai.APIStatusError) as info:
        oa(gateway).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 20_000}]
        )
    assert info.value.status_code == 413
    assert "max_body_mb" in str(info.value)
    still_serving(gateway)


def test_wrong_host_header_is_refused(gateway: Harness) -> None:
    status, body, _ = raw_post(gateway, "/v1/chat/completions", b"{}", {"Host": "evil.example"})
    assert status == 403
    assert "allowed_hosts" in body["error"]["message"]
    still_serving(gateway)


@pytest.mark.parametrize("dialect", ["openai-chat", "anthropic", "gemini"])
def test_upstream_refusing_connections(
    make_gateway: Any, simulator: Simulator, dialect: str
) -> None:
    config = base_config(simulator.url)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens on that port
    for p in config["providers"]:
        p["base_url"] = dead + ("/v1" if p["kind"] not in ("anthropic", "gemini") else "")
    gateway = make_gateway(config)
    if dialect == "openai-chat":
        with pytest.raises(openai.InternalServerError) as info:
            oa(gateway).chat.completions.create(model="gpt-4o", messages=[])
        assert info.value.status_code == 502
    elif dialect == "anthropic":
        with pytest.raises(anthropic.InternalServerError) as a_info:
            an(gateway).messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=[])
        assert a_info.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    else:
        client = genai.Client(
            api_key="k",
            http_options=types.HttpOptions(
                base_url=gateway.url, retry_options=types.HttpRetryOptions(attempts=1)
            ),
        )
        with pytest.raises(genai_errors.ServerError) as g_info:
            client.models.generate_content(model="gemini-2.5-flash", contents="x")
        assert g_info.value.code == 502 and g_info.value.status == "UNAVAILABLE"
    rows = gateway.rows()
    assert rows[-1]["status"] == 502 and "could not reach" not in (rows[-1]["error"] or "x")


def test_upstream_errors_pass_through(gateway: Harness) -> None:
    client = oa(gateway, default_headers={"x-sim-fault": "rate_limit"})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.response.headers.get("retry-after")
    assert info.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    row = gateway.last()
    assert row["status"] == 429 and row["error"] == "upstream:rate_limit_exceeded"
    assert row["cost_usd"] == "0" and row["price_source"] == "error"


def test_keys_never_reach_the_ledger(gateway: Harness) -> None:
    still_serving(gateway)
    oa(gateway, key="sk-client-own-secret-123").chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    gateway.settle()
    dump = "\n".join(sqlite3.connect(gateway.ledger_path).iterdump())
    for secret in (ACME_KEY, PROVIDER_KEY, "sk-client-own-secret-123"):
        assert secret not in dump


def test_upstream_redirect_is_not_followed(make_gateway: Any, simulator: Simulator) -> None:
    """A keyed call must never be re-sent to wherever a redirect points."""
    from aiohttp import web

    from tollhouse.testing import BackgroundServer

    seen: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        seen.append(request.path)
        raise web.HTTPTemporaryRedirect(simulator.url + "/openai/v1/chat/completions")

    def app() -> web.Application:
        made = web.Application()
        made.router.add_post("/v1/chat/completions", redirect)
        return made

    with BackgroundServer(app) as evil:
        config = base_config(simulator.url)
        config["providers"][0]["base_url"] = evil.url + "/v1"
        gateway = make_gateway(config)
        with pytest.raises(openai.APIStatusError) as info:
            oa(gateway).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    assert info.value.status_code == 502
    assert "redirect" in str(info.value)
    assert seen == ["/v1/chat/completions"]  # asked once, never followed


def test_gemini_query_key_moves_to_a_header(gateway: Harness, simulator: Simulator) -> None:
    body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode()
    status, reply, _ = raw_post(
        gateway, "/v1beta/models/gemini-2.5-flash:generateContent?key=AIza-client-key", body
    )
    assert status == 200
    bill = bill_for_id(simulator, reply["responseId"])
    assert bill["auth"] == "x-goog-api-key"


def bill_for_id(simulator: Simulator, upstream_id: str) -> dict[str, Any]:
    return next(b for b in simulator.bills() if b["id"] == upstream_id)


def raw_request(gateway: Harness, method: str, path: str) -> tuple[int, dict[str, Any], str]:
    host, port = gateway.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path)
    resp = conn.getresponse()
    data, allow = resp.read(), resp.getheader("Allow", "")
    conn.close()
    return resp.status, json.loads(data), allow


def test_wrong_methods_and_paths_are_json_errors_that_say_what_to_use(gateway: Harness) -> None:
    status, body, allow = raw_request(gateway, "GET", "/tollhouse/v1/gate")
    assert (status, allow) == (405, "POST")
    assert "use POST" in body["error"]["message"]
    status, body, _ = raw_request(gateway, "GET", "/tollhouse/v1/tasks/t/steps/1/verify")
    assert status == 405 and "use POST" in body["error"]["message"]
    status, body, _ = raw_request(gateway, "GET", "/v1/messages")  # Anthropic's shape there
    assert status == 405 and body["type"] == "error" and "use POST" in body["error"]["message"]
    status, body, _ = raw_request(gateway, "POST", "/v2/chat/completions")
    assert status == 404 and "base URL" in body["error"]["message"]
    status, body, _ = raw_request(gateway, "GET", "/tollhouse/ui/")  # the dashboard's path
    assert status == 404 and "tollhouse dashboard" in body["error"]["message"]
    assert raw_request(gateway, "GET", "/tollhouse/health")[0] == 200  # still serving
