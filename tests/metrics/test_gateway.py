"""GatewayMetrics' own counting, read back through prometheus-client's exposition parser."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tollhouse.ledger.entry import LedgerEntry
from tollhouse.metering.usage import Usage
from tollhouse.metrics import GatewayMetrics
from tollhouse.metrics.gateway import MAX_VALUES, OTHER
from tollhouse.pricing import Cost


def entry(**kw: Any) -> LedgerEntry:
    base: dict[str, Any] = dict(
        ts=datetime.now(UTC),
        request_id="r",
        project="acme",
        attribution="header",
        dialect="openai-chat",
        status=200,
        stream=False,
        latency_ms=250.0,
        provider="openai",
        model_served="gpt-4o-mini",
        usage=Usage(input_tokens=100, cached_input_tokens=40, output_tokens=7),
        trust="full",
    )
    return LedgerEntry(**(base | kw))


def samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[Any]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_counters_and_histograms_add_up() -> None:
    metrics = GatewayMetrics()
    for latency in (100.0, 250.0, 250.0, 4000.0):  # 0.25 s sits on a bound: counted in it
        metrics.observe(entry(latency_ms=latency), Cost(Decimal("0.5"), "override"), latency / 2)
    metrics.observe(entry(status=429, error_class="rate_limit", usage=None), Cost(None, "x"), 1)
    found = samples(metrics)
    pm = {"project": "acme", "provider": "openai", "model": "gpt-4o-mini"}

    def at(name: str, **labels: str) -> float:
        return found[(name, frozenset(labels.items()))]

    assert at("tollhouse_requests_total", **pm, status="200") == 4
    assert at("tollhouse_requests_total", **pm, status="429") == 1
    assert at("tollhouse_tokens_total", **pm, kind="input") == 400
    assert at("tollhouse_tokens_total", **pm, kind="cached_input") == 160
    assert ("tollhouse_tokens_total", frozenset({**pm, "kind": "reasoning"}.items())) not in found
    assert at("tollhouse_cost_usd_total", **pm) == 2.0
    assert at("tollhouse_errors_total", provider="openai", error_class="rate_limit") == 1
    assert at("tollhouse_trust_requests_total", project="acme", trust="full") == 5
    h = "tollhouse_request_duration_seconds"
    assert at(f"{h}_bucket", provider="openai", le="0.1") == 1
    assert at(f"{h}_bucket", provider="openai", le="0.25") == 4  # the 429 took 250 ms too
    assert at(f"{h}_bucket", provider="openai", le="2.5") == 4
    assert at(f"{h}_bucket", provider="openai", le="5.0") == 5
    assert at(f"{h}_bucket", provider="openai", le="+Inf") == 5
    assert at(f"{h}_count", provider="openai") == 5
    assert at(f"{h}_sum", provider="openai") == 4.85
    assert at("tollhouse_gateway_overhead_seconds_count") == 5


def test_label_values_stay_bounded() -> None:
    metrics = GatewayMetrics()
    for i in range(MAX_VALUES + 20):
        metrics.observe(entry(model_served=f"m{i}"), Cost(None, "unpriced"), 1.0)
    models = {
        dict(labels)["model"]
        for name, labels in samples(metrics)
        if name == "tollhouse_unpriced_requests_total"
    }
    assert len(models) == MAX_VALUES + 1 and OTHER in models
