"""The differential matrix (issue 16): every client dialect x every upstream dialect
x {plain, streamed} x a corpus of requests, through the real gateway to a capture
upstream (:mod:`tests.translate.capture`).

For each cell the golden file records what reached the upstream (path, query,
JSON body), the status, the ``X-Tollhouse-Translation-Omitted`` header, the
answer the client got (parsed JSON, or the stream's events) and the ledger row
(dialect, provider, models, tokens, cost, error). Any change in what
is sent or answered shows up in review as a golden diff.

Regenerate after an intended change, then read the diff::

    TOLLHOUSE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/translate/test_matrix.py -p no:cacheprovider

A cell whose candidate is skipped (the request cannot be translated faithfully)
records ``"skipped"`` and the test checks the reason reaches the client.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY, Harness
from tests.translate.capture import CAPTURE, CaptureState, capture_app
from tests.translate.corpus import CORPUS, Case
from tests.translate.streams import events
from tollhouse.app import create_app
from tollhouse.settings import parse_settings
from tollhouse.testing import BackgroundServer

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TOLLHOUSE_UPDATE_GOLDEN") == "1"
DIALECTS = ("openai-chat", "openai-responses", "anthropic", "gemini")
# One upstream model per dialect, chosen to take most knobs (sampling, thinking);
# gpt-5-codex is declared Responses-only, so every client reaches it translated.
UPSTREAMS = {
    "openai-chat": "cap-openai/gpt-4.1",
    "openai-responses": "cap-responses/gpt-5-codex",
    "anthropic": "cap-anthropic/claude-sonnet-4-5",
    "gemini": "cap-gemini/gemini-2.5-flash",
}


@pytest.fixture(scope="module")
def capture() -> Iterator[BackgroundServer]:
    with BackgroundServer(capture_app) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    capture: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    def provider(name: str, kind: str, path: str) -> dict[str, Any]:
        return {"name": name, "kind": kind, "base_url": capture.url + path, "api_key_env": KEY_ENV}

    config = {
        "providers": [
            provider("cap-openai", "openai", "/openai/v1"),
            provider("cap-responses", "openai", "/responses/v1")
            | {"responses_models": ["gpt-5-codex"]},
            provider("cap-anthropic", "anthropic", "/anthropic"),
            provider("cap-gemini", "gemini", "/gemini"),
        ],
        "projects": {"acme": {"keys": [ACME_KEY]}},
        "models": {f"to-{d}": {"chain": [model]} for d, model in UPSTREAMS.items()},
        "capacity": {"max_attempts": 1},
    }
    settings = parse_settings(config)
    ledger = tmp_path_factory.mktemp("matrix") / "ledger.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, PROVIDER_KEY)
        server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()
        try:
            yield Harness(server, ledger, settings)
        finally:
            server.stop()


def _url(gateway: str, client: str, alias: str, stream: bool) -> str:
    if client == "openai-chat":
        return f"{gateway}/v1/chat/completions"
    if client == "anthropic":
        return f"{gateway}/v1/messages"
    if client == "openai-responses":
        return f"{gateway}/v1/responses"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{gateway}/v1beta/models/{alias}:{method}"


def _body(client: str, case: Case, alias: str, stream: bool) -> dict[str, Any]:
    body = dict(case.payload)
    if client != "gemini":
        body["model"] = alias
        body["stream"] = stream
    return body


def _send(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    call = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    call.add_header("content-type", "application/json")
    call.add_header("authorization", f"Bearer {ACME_KEY}")
    call.add_header("x-api-key", ACME_KEY)
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _answer(data: bytes, stream: bool, status: int) -> Any:
    if stream and status < 300:
        return events(data)
    return json.loads(data)


# The ledger columns a translated call must get right, whatever the dialects.
ROW = (
    "dialect",
    "provider",
    "model_requested",
    "model_served",
    "status",
    "stream",
    "incomplete",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "upstream_id",
    "error",
)


def _row(gateway: Harness, request_id: str) -> dict[str, Any]:
    row = gateway.row(request_id)  # by id: an earlier refused call's row may land later
    return {column: row[column] for column in ROW}


def _cell(
    gateway: Harness,
    state: CaptureState,
    client: str,
    case: Case,
    target: str,
    stream: bool,
) -> dict[str, Any]:
    state.reset()
    for dialect, (plain, streamed) in case.answers.items():
        state.answer_with(dialect, plain=plain, stream=streamed)
    alias = f"to-{target}"
    url = _url(gateway.url, client, alias, stream)
    status, headers, data = _send(url, _body(client, case, alias, stream))
    headers = {k.lower(): v for k, v in headers.items()}
    if not state.requests:
        skipped = case.skip.get(target)
        assert skipped, f"{client}/{case.name} -> {target}: nothing sent ({status}: {data[:300]!r})"
        assert status >= 400 and skipped in data.decode(), data[:500]
        return {"skipped": skipped}  # the status and wording are the dispatcher's
    assert len(state.requests) == 1
    sent = state.requests[0]
    return {
        "sent": {"path": sent.path, "query": sent.query, "body": sent.body},
        "status": status,
        "omitted": headers.get("x-tollhouse-translation-omitted"),
        "answer": _answer(data, stream, status),
        "row": _row(gateway, headers["x-tollhouse-request-id"]),
    }


@pytest.mark.parametrize(
    ("client", "case"), [(c, case) for c in DIALECTS for case in CORPUS[c]], ids=str
)
def test_matrix(gateway: Harness, capture: BackgroundServer, client: str, case: Case) -> None:
    assert capture.app is not None
    state = capture.app[CAPTURE]
    got: dict[str, Any] = {"request": case.payload}
    for target in DIALECTS:
        for stream in (False, True):
            key = f"{target} {'streamed' if stream else 'plain'}"
            got[key] = _cell(gateway, state, client, case, target, stream)
    path = GOLDEN / client / f"{case.name}.json"
    text = json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not path.exists():
        pytest.fail(f"no golden file {path}: write it with TOLLHOUSE_UPDATE_GOLDEN=1")
    assert json.loads(path.read_text()) == json.loads(text), (
        f"{path} differs; if intended, regenerate with TOLLHOUSE_UPDATE_GOLDEN=1"
    )
