"""Deep and odd JSON in an upstream's answer: a clear 502 in the client's dialect and a
ledger row, never a crash (RecursionError in parsing, translating or metering)."""

from __future__ import annotations

import http.client
import json
import logging
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import GatewayFactory
from tollhouse.testing import BackgroundServer

DEEP = b"[" * 100_000 + b"]" * 100_000


def chat_body(extra: bytes = b"", arguments: str = "{}") -> bytes:
    message = {
        "role": "assistant",
        "content": "ok",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
        ],
    }
    body = {
        "id": "chatcmpl-deep",
        "object": "chat.completion",
        "model": "odd-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    return json.dumps(body).encode()[:-1] + extra + b"}"


SHAPES: dict[str, tuple[int, str, bytes]] = {
    # name: (status, content type, body)
    "deep-body": (200, "application/json", chat_body(b', "x": ' + DEEP)),
    "deep-usage": (
        200,
        "application/json",
        chat_body(b', "usage": {"prompt_tokens": ' + DEEP + b"}"),
    ),
    "deep-arguments": (200, "application/json", chat_body(arguments=(DEEP.decode()))),
    "deep-error": (400, "application/json", b'{"error": ' + DEEP + b"}"),
    "deep-error-500": (500, "application/json", b'{"error": {"type": ' + DEEP + b"}}"),
    "deep-stream": (
        200,
        "text/event-stream",
        b'data: {"id": "x", "choices": [{"index": 0, "delta": {"content": "ok"}}], "x": '
        + DEEP
        + b"}\n\ndata: [DONE]\n\n",
    ),
    "not-json": (200, "application/json", b"\xff\xfe not json"),
    "a-list": (200, "application/json", b"[1, 2]"),
}


def deep_provider() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        status, content_type, body = SHAPES[request.headers["x-shape"]]
        return web.Response(body=body, status=status, content_type=content_type)

    app = web.Application(client_max_size=2**24)
    app.router.add_post("/v1/chat/completions", answer)
    return app


def post(url: str, path: str, body: dict[str, Any], shape: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    try:
        headers = {"Content-Type": "application/json", "x-shape": shape, "X-Tollhouse-Project": "p"}
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_deep_or_odd_upstream_json_is_a_clear_answer_and_a_row(
    make_gateway: GatewayFactory, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    with BackgroundServer(deep_provider) as upstream:
        provider = {"name": "odd", "kind": "openai-compatible", "base_url": upstream.url + "/v1"}
        gw = make_gateway(
            {"providers": [provider], "models": {"deep": {"chain": ["odd/odd-model"]}}}
        )
        with caplog.at_level(logging.WARNING):
            # The same dialect (relayed as it came) and a translated one (parsed whole).
            same = post(gw.url, "/v1/chat/completions", {"model": "deep", "messages": HI}, shape)
            stream = shape == "deep-stream"
            body = {"model": "deep", "messages": HI, "max_tokens": 16, "stream": stream}
            status, data = post(gw.url, "/v1/messages", body, shape)
            rows = gw.rows()
    expected = SHAPES[shape][0]
    assert same[0] == expected
    assert status in (expected, 502), (status, data[:300])
    if status >= 400:  # in Anthropic's own error shape, whatever the upstream's was
        error = json.loads(data)
        assert error["type"] == "error" and error["error"]["message"], data[:300]
    if stream:
        assert b"event: error" in data or b"message_stop" in data, data[:300]
    assert [r["project"] for r in rows] == ["p", "p"]
    assert [r["status"] for r in rows] == [expected, status]
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("tollhouse")]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
