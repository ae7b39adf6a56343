"""Keeping agents alive: retries, fallback chains, provenance, through the real SDKs.

The simulator is programmed per model (``Simulator.program``) so one candidate
of a chain fails while the next one serves.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from datetime import datetime
from typing import Any

import openai
import pytest

from tests.conftest import GatewayFactory, Harness, assert_matches_bill, base_config, bill_for
from tests.test_metering_e2e import oa
from tollhouse.simulator import Simulator

PRIMARY, FALLBACK = "gpt-4o-mini", "grok-3-mini"


@pytest.fixture
def chained(make_gateway: GatewayFactory, simulator: Simulator) -> Harness:
    config = base_config(simulator.url)
    config["models"] = {"smart": {"chain": [f"openai/{PRIMARY}", f"xai/{FALLBACK}"]}}
    config["capacity"] = {"max_attempts": 2, "retry_base_s": 0.01, "retry_cap_s": 0.05}
    return make_gateway(config)


def ask(gateway: Harness, model: str = "smart", **kw: Any) -> Any:
    return oa(gateway, **kw).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "keep me alive"}]
    )


def attempts(gateway: Harness, request_id: str) -> list[dict[str, Any]]:
    gateway.settle()
    conn = sqlite3.connect(gateway.ledger_path)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM attempts WHERE request_id = ? ORDER BY n", (request_id,))
    return [dict(r) for r in rows]


def test_primary_answers_fresh(chained: Harness, simulator: Simulator) -> None:
    raw = ask(chained)
    assert raw.headers["x-tollhouse-served-by"] == f"openai/{PRIMARY}"
    assert raw.headers["x-tollhouse-trust"] == "full"
    assert raw.headers["x-tollhouse-attempts"] == "1"
    row = chained.row(raw.headers["x-tollhouse-request-id"])
    assert (row["trust"], row["attempts"], row["model_requested"]) == ("full", 1, "smart")
    assert_matches_bill(row, bill_for(simulator, row["upstream_id"]))


@pytest.mark.parametrize("fault", ["server_error", "overloaded"])
def test_fallback_on_availability_errors(chained: Harness, faults: Simulator, fault: str) -> None:
    faults.program(fault, count=2, model=PRIMARY)
    raw = ask(chained)
    assert raw.headers["x-tollhouse-served-by"] == f"xai/{FALLBACK}"
    assert raw.headers["x-tollhouse-trust"] == "degraded"
    assert raw.headers["x-tollhouse-attempts"] == "3"
    request_id = raw.headers["x-tollhouse-request-id"]
    row = chained.row(request_id)
    assert (row["trust"], row["provider"], row["model_served"]) == ("degraded", "xai", FALLBACK)
    tried = attempts(chained, request_id)
    assert [(a["provider"], a["error_class"]) for a in tried] == [
        ("openai", "server" if fault == "server_error" else "overloaded"),
        ("openai", "server" if fault == "server_error" else "overloaded"),
        ("xai", None),
    ]


def test_retry_recovers_on_the_primary(chained: Harness, faults: Simulator) -> None:
    faults.program("server_error", count=1, model=PRIMARY)
    raw = ask(chained)
    assert raw.headers["x-tollhouse-served-by"] == f"openai/{PRIMARY}"
    assert raw.headers["x-tollhouse-trust"] == "full"  # a retry of the primary is still fresh
    assert raw.headers["x-tollhouse-attempts"] == "2"


def test_client_errors_never_fall_back(chained: Harness, faults: Simulator) -> None:
    faults.program("insufficient_quota", count=1, model=PRIMARY)
    with pytest.raises(openai.RateLimitError) as info:
        ask(chained)
    assert info.value.body["code"] == "insufficient_quota"  # type: ignore[index]
    assert info.value.response.headers["x-tollhouse-attempts"] == "1"
    bills = [b for b in faults.bills() if b["model"] == FALLBACK]
    request_id = info.value.response.headers["x-tollhouse-request-id"]
    assert attempts(chained, request_id)[0]["error_class"] == "client"
    assert not [b for b in bills if b.get("request_id") == request_id]


def test_model_gone_falls_back_and_is_skipped_next_time(
    chained: Harness, faults: Simulator
) -> None:
    faults.program("not_found", count=1, model=PRIMARY)
    first = ask(chained)
    assert first.headers["x-tollhouse-served-by"] == f"xai/{FALLBACK}"
    second = ask(chained)
    assert second.headers["x-tollhouse-served-by"] == f"xai/{FALLBACK}"
    tried = attempts(chained, second.headers["x-tollhouse-request-id"])
    assert tried[0]["skipped"] and "gone" in tried[0]["skipped"]


def test_retry_after_is_obeyed(make_gateway: GatewayFactory, faults: Simulator) -> None:
    config = base_config(faults.url)
    config["capacity"] = {"max_attempts": 2, "retry_base_s": 0.01}
    gateway = make_gateway(config)
    faults.program("rate_limit,retry_after=0.3", count=1, model=PRIMARY)
    raw = ask(gateway, model=PRIMARY)
    assert raw.headers["x-tollhouse-attempts"] == "2"
    request_id = raw.headers["x-tollhouse-request-id"]
    mine = [b for b in faults.bills() if b["model"] == PRIMARY][-2:]
    assert [b["status"] for b in mine] == [429, 200]
    first, second = (datetime.fromisoformat(b["ts"]) for b in mine)
    assert (second - first).total_seconds() >= 0.3  # no attempt before the provider said
    assert attempts(gateway, request_id)[0]["retry_after_s"] == pytest.approx(0.3)


def test_giving_up_tells_the_sdk_not_to_retry(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["capacity"] = {"max_attempts": 2, "retry_base_s": 0.01, "retry_cap_s": 0.02}
    gateway = make_gateway(config)
    faults.program("server_error", count=10, model="gpt-4.1-nano")
    before = len([b for b in faults.bills() if b["model"] == "gpt-4.1-nano"])
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="th-acme-test", max_retries=2)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(
            model="gpt-4.1-nano", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.response.headers["x-should-retry"] == "false"
    after = len([b for b in faults.bills() if b["model"] == "gpt-4.1-nano"])
    assert after - before == 2  # tollhouse's two attempts; the SDK's retries didn't multiply them


def test_no_fallback_after_the_first_byte(chained: Harness, faults: Simulator) -> None:
    faults.program("cut=3", count=1, model=PRIMARY)
    chunks, failed = [], False
    try:
        stream = oa(chained).chat.completions.create(
            model="smart", stream=True, messages=[{"role": "user", "content": "x"}]
        )
        chunks = list(stream)
    except Exception:
        failed = True
    row = chained.last()
    assert row["provider"] == "openai" and row["incomplete"] == 1 and row["attempts"] == 1
    assert failed or chunks  # the client saw the broken stream, not a silent switch


def test_cross_dialect_fallback_openai_client_anthropic_provider(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["models"] = {"smart": {"chain": [f"openai/{PRIMARY}", "anthropic/claude-sonnet-4-6"]}}
    config["capacity"] = {"max_attempts": 1}
    gateway = make_gateway(config)
    faults.program("overloaded", count=1, model=PRIMARY)
    raw = ask(gateway)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert raw.headers["x-tollhouse-served-by"] == "anthropic/claude-sonnet-4-6"
    row = gateway.row(raw.headers["x-tollhouse-request-id"])
    assert row["provider"] == "anthropic" and row["trust"] == "degraded"
    assert_matches_bill(row, bill_for(faults, row["upstream_id"]))
    assert completion.usage is not None and completion.usage.prompt_tokens == row["input_tokens"]


def test_cross_dialect_stream(make_gateway: GatewayFactory, simulator: Simulator) -> None:
    config = base_config(simulator.url)
    config["models"] = {"claude-via-openai": {"chain": ["anthropic/claude-haiku-4-5"]}}
    gateway = make_gateway(config)
    stream = oa(gateway).chat.completions.create(
        model="claude-via-openai",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream across dialects"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage]
    assert text and len(usage) == 1
    row = gateway.last()
    assert row["provider"] == "anthropic" and row["incomplete"] == 0
    assert usage[0].completion_tokens == row["output_tokens"]
    assert_matches_bill(row, bill_for(simulator, row["upstream_id"]))


def test_report_capacity_counts(chained: Harness, faults: Simulator) -> None:
    faults.program("server_error", count=2, model=PRIMARY)
    ask(chained)
    ask(chained)
    chained.settle()
    from tollhouse.ledger.report import capacity_summary

    conn = sqlite3.connect(chained.ledger_path)
    rows = {(r["provider"], r["model"]): r for r in capacity_summary(conn)}
    primary = rows[("openai", PRIMARY)]
    assert primary["attempts"] == 3 and primary["server"] == 2
    assert rows[("xai", FALLBACK)]["attempts"] == 1
    json.dumps(list(rows.values()))  # JSON-able for --format json


def test_live_capacity_endpoint(chained: Harness, faults: Simulator) -> None:
    faults.program("rate_limit,retry_after=0.01", count=1, model=PRIMARY)
    ask(chained)
    with urllib.request.urlopen(chained.url + "/tollhouse/v1/capacity", timeout=10) as reply:
        stats = json.load(reply)
    assert stats["openai"]["in_flight"] == 0
    assert stats["openai"]["rate_limited_received"] >= 1


def test_no_capacity_within_the_deadline_is_a_429_with_retry_after(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    config = base_config(simulator.url)
    config["providers"][0]["max_in_flight"] = 1
    gateway = make_gateway(config)
    holding = oa(gateway, default_headers={"x-sim-fault": "hold=2"}).chat.completions.create(
        model=PRIMARY, stream=True, messages=[{"role": "user", "content": "hold the slot"}]
    )
    next(iter(holding))  # the only in-flight slot is now taken, and stays taken
    try:
        with pytest.raises(openai.RateLimitError) as info:
            oa(gateway, default_headers={"X-Tollhouse-Deadline-Ms": "50"}).chat.completions.create(
                model=PRIMARY, messages=[{"role": "user", "content": "no room"}]
            )
    finally:
        holding.close()
    headers = info.value.response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-should-retry"] == "false"
    assert "deadline" in str(info.value)
    row = next(r for r in gateway.rows() if r["status"] == 429)
    tried = attempts(gateway, row["request_id"])
    assert tried[0]["skipped"] == "capacity timeout"


def test_report_capacity_cli(chained: Harness, faults: Simulator) -> None:
    from click.testing import CliRunner

    from tollhouse.cli.main import cli

    faults.program("server_error", count=1, model=PRIMARY)
    ask(chained)
    chained.settle()
    result = CliRunner().invoke(
        cli, ["report", "--capacity", "--ledger", str(chained.ledger_path), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {(r["provider"], r["model"]): r for r in json.loads(result.output)}
    assert rows[("openai", PRIMARY)]["server"] == 1 and rows[("openai", PRIMARY)]["ok"] == 1


def test_a_dead_primary_sees_fewer_requests_not_more(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    """Breaker and retry budget: 30 requests while the primary is down cost it a handful."""
    config = base_config(faults.url)
    config["models"] = {"smart": {"chain": ["openai/gpt-4.1-mini", f"xai/{FALLBACK}"]}}
    config["capacity"] = {"max_attempts": 3, "retry_base_s": 0.001, "retry_cap_s": 0.002}
    gateway = make_gateway(config)
    faults.program("server_error", count=1000, model="gpt-4.1-mini")
    before = len([b for b in faults.bills() if b["model"] == "gpt-4.1-mini"])
    served = [ask(gateway).headers["x-tollhouse-served-by"] for _ in range(30)]
    assert served == [f"xai/{FALLBACK}"] * 30  # every request answered, by the fallback
    hits = len([b for b in faults.bills() if b["model"] == "gpt-4.1-mini"]) - before
    assert hits <= 10, f"the dead primary got {hits} requests for 30 client requests"
    stats = json.load(urllib.request.urlopen(gateway.url + "/tollhouse/v1/capacity", timeout=10))
    assert stats["openai"]["breaker"] == "closed"  # the provider: only one model is sick
    ejected = {e["model"]: e for e in stats["openai"]["ejections"]}
    assert ejected["gpt-4.1-mini"]["state"] in ("open", "half_open")
    assert ejected["gpt-4.1-mini"]["reason"] == "server"


def test_a_client_that_leaves_gives_its_slot_back(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    config = base_config(simulator.url)
    config["providers"][0]["max_in_flight"] = 1
    gateway = make_gateway(config)
    impatient = oa(gateway, timeout=0.3, default_headers={"x-sim-fault": "latency=3000"})
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(
            model=PRIMARY, messages=[{"role": "user", "content": "too slow for me"}]
        )
    # The only slot must be free again: this one may wait at most 2 s for it.
    raw = oa(gateway, default_headers={"X-Tollhouse-Deadline-Ms": "2000"})
    reply = raw.chat.completions.create(
        model=PRIMARY, messages=[{"role": "user", "content": "my turn"}]
    )
    assert reply.choices[0].message.content
    rows = gateway.rows()
    assert any(r["status"] == 499 and r["error"] == "client_disconnected" for r in rows)
