"""Through the real gateway: odd headers and odd provider usage never cost a row or a restart.

Issue 12's first class: a non-UTF-8 ``X-Tollhouse-Project`` or ``"prompt_tokens": 1e30``
used to stop the ledger writer, leave /metrics answering 500, and fail the restart.
"""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.conftest import GatewayFactory, base_config
from tests.ingress.wire import raw_request
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

BODY = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'


def raw_post(url: str, path: str, headers: bytes, body: bytes = BODY) -> tuple[int, bytes]:
    """A request with header bytes no HTTP library would send (they aren't UTF-8)."""
    status, _, rest = raw_request(
        url, b"POST", path, b"Content-Type: application/json\r\n" + headers, body
    )
    return status, rest


def metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_a_project_header_that_is_not_utf8_costs_nothing(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    config = base_config(simulator.url)
    gw = make_gateway(config)
    status, _ = raw_post(gw.url, "/v1/chat/completions", b"X-Tollhouse-Project: acme\xff\xfe\r\n")
    assert status == 200
    status, _ = raw_post(gw.url, "/v1/chat/completions", b"X-Tollhouse-Tag-Who: \x80\x81\r\n")
    assert status == 200
    rows = gw.rows()
    assert rows[0]["project"] == "acme\ufffd\ufffd"
    assert json.loads(rows[1]["tags"]) == {"who": "\ufffd\ufffd"}
    assert "acme\ufffd\ufffd" in metrics(gw.url)  # /metrics still answers
    again = make_gateway(config)  # and a gateway on a fresh ledger starts as usual
    assert raw_post(again.url, "/v1/chat/completions", b"")[0] == 200


def odd_provider(usage: dict[str, Any]) -> web.Application:
    """An OpenAI-compatible upstream whose usage object is whatever the test says."""

    async def answer(request: web.Request) -> web.Response:
        body = {
            "id": "chatcmpl-odd",
            "object": "chat.completion",
            "model": "odd-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        return web.Response(text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    return app


def test_odd_provider_usage_is_kept_raw_unpriced_and_counters_never_go_down(
    make_gateway: GatewayFactory,
) -> None:
    shapes: list[dict[str, Any]] = [
        {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        {"prompt_tokens": 1e30, "completion_tokens": 2, "total_tokens": 1e30},
        {"prompt_tokens": -50, "completion_tokens": -7, "total_tokens": -57},
        {"prompt_tokens": 10**25, "completion_tokens": 1},
        {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    ]
    seen = -1.0
    for n, usage in enumerate(shapes):
        with BackgroundServer(lambda usage=usage: odd_provider(usage)) as upstream:  # type: ignore[misc]
            provider = {
                "name": "odd",
                "kind": "openai-compatible",
                "base_url": upstream.url + "/v1",
            }
            prices = {"odd/odd-model": {"input": "1", "output": "2"}}
            gw = make_gateway({"providers": [provider], "prices": prices})
            status, _ = raw_post(gw.url, "/v1/chat/completions", b"X-Tollhouse-Project: p\r\n")
            assert status == 200, n
            row = gw.last()
            text = metrics(gw.url)
            tokens = counter(text, "tollhouse_tokens_total")
            assert tokens >= 0 and counter(text, "tollhouse_cost_usd_total") >= 0
            if n in (1, 2, 3):
                assert row["price_source"] == "odd-usage" and row["cost_usd"] is None
                kept = json.loads(row["usage_raw"])["prompt_tokens"]  # as received, exactly
                assert Decimal(str(kept)) == Decimal(str(usage["prompt_tokens"]))
            else:
                assert row["price_source"] == "override" and row["cost_usd"] is not None
            assert row["input_tokens"] >= 0 and row["output_tokens"] >= 0
            seen = max(seen, tokens)
    assert seen > 0
