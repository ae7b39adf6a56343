"""Hostile provider usage through the gateway, for every provider kind, streamed or not.

The simulator's ``usage=KIND`` fault answers with usage a buggy provider might
send (1e30, 40-digit, negative, strings, null, nested junk, cache reads above
the input). The client gets its answer; the row exists, kept raw and unpriced;
Prometheus counters never go down; nothing logs a traceback.
"""

from __future__ import annotations

import http.client
import json
import logging
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.ledger.test_hostile_rows_e2e import counter, metrics
from tollhouse.ledger.report import UNPRICED
from tollhouse.simulator.oddusage import KINDS

HI = [{"role": "user", "content": "hi"}]
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
# (path, body) per provider kind; the stream flag or Gemini's method is added per call.
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai-chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": HI}),
    "openai-responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}),
    "anthropic": ("/v1/messages", {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 64}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:{method}", GEMINI),
}


def call(url: str, dialect: str, stream: bool, fault: str) -> tuple[int, str, bytes]:
    path, body = CALLS[dialect]
    if dialect == "gemini":
        path = path.format(method="streamGenerateContent?alt=sse" if stream else "generateContent")
    elif stream:
        body = {**body, "stream": True}
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
    try:
        headers = {"Content-Type": "application/json", "x-sim-fault": fault}
        conn.request("POST", path, json.dumps(body), {**headers, "X-Tollhouse-Project": "odd"})
        response = conn.getresponse()
        data = response.read()
        return response.status, response.headers["X-Tollhouse-Request-Id"], data
    finally:
        conn.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_usage_never_costs_the_answer_the_row_or_the_counters(
    make_gateway: GatewayFactory, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    gw = make_gateway()
    seen = {"tokens": 0.0, "cost": 0.0}
    ids = []
    with caplog.at_level(logging.WARNING):
        for dialect in CALLS:
            for stream in (False, True):
                status, request_id, data = call(gw.url, dialect, stream, f"usage={kind}")
                assert status == 200, (dialect, stream, data[:300])
                assert b"sim" in data  # the answer's text made it
                ids.append(request_id)
                text = metrics(gw.url)
                now = {
                    "tokens": counter(text, "tollhouse_tokens_total"),
                    "cost": counter(text, "tollhouse_cost_usd_total"),
                }
                assert all(now[k] >= seen[k] >= 0 for k in now), (dialect, stream, now, seen)
                seen = now
    rows = {r["request_id"]: r for r in gw.rows()}
    for request_id in ids:
        row = rows[request_id]
        assert row["project"] == "odd" and row["status"] == 200
        if kind == "cache_over" and row["dialect"] == "anthropic":
            # Anthropic's input_tokens excludes cache reads: a large read is a large
            # input, plausible and priced, not a part above its total.
            assert row["cached_input_tokens"] >= 10**6 and row["cost_usd"] is not None
            continue
        assert row["cost_usd"] is None, row
        wanted = ("no-usage",) if kind == "null" else UNPRICED
        assert row["price_source"] in wanted, (kind, row["dialect"], row["price_source"])
        assert min(row[c] or 0 for c in ("input_tokens", "output_tokens")) >= 0
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
