"""``GET /metrics``: scraped after real SDK traffic, series checked against the ledger."""

from __future__ import annotations

import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ACME_KEY, PROVIDER_KEY, GatewayFactory, Harness, base_config
from tollhouse.simulator import Simulator

MODEL = "gpt-4o-mini"


def scrape(gateway: Harness) -> tuple[str, dict[tuple[str, frozenset[Any]], float]]:
    gateway.settle()
    with urllib.request.urlopen(gateway.url + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_count_requests_tokens_cost_errors_and_trust(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["capacity"] = {"max_attempts": 1}
    gateway = make_gateway(config)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)
    for task in ("t1", "t1", "t2"):  # two agent tasks, labelled as the trust gate expects
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Tollhouse-Task": task},
        )
    faults.program("server_error", count=1, model=MODEL)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    text, samples = scrape(gateway)
    rows = [r for r in gateway.rows() if r["status"] == 200]
    pm = {"project": "acme", "provider": "openai", "model": MODEL}
    assert value(samples, "tollhouse_requests_total", **pm, status="200") == 3
    assert value(samples, "tollhouse_requests_total", **pm, status="500") == 1
    for kind in ("input", "output"):
        total = sum(r[f"{kind}_tokens"] for r in rows)
        assert value(samples, "tollhouse_tokens_total", **pm, kind=kind) == total
    cost = sum((Decimal(r["cost_usd"]) for r in gateway.rows()), Decimal(0))
    assert value(samples, "tollhouse_cost_usd_total", **pm) == pytest.approx(float(cost))
    assert value(samples, "tollhouse_errors_total", provider="openai", error_class="server") == 1
    assert value(samples, "tollhouse_trust_requests_total", project="acme", trust="full") == 4
    assert value(samples, "tollhouse_gateway_overhead_seconds_count") == 4
    assert value(samples, "tollhouse_request_duration_seconds_count", provider="openai") == 4
    assert value(samples, "tollhouse_in_flight") == 0
    assert value(samples, "tollhouse_upstream_in_flight", provider="openai") == 0
    assert value(samples, "tollhouse_trust_tasks") == 2
    assert value(samples, "tollhouse_trust_degraded_task_share") == 0
    assert ACME_KEY not in text and PROVIDER_KEY not in text


def test_budget_gauges_and_host_check(make_gateway: GatewayFactory, simulator: Simulator) -> None:
    config = base_config(simulator.url)
    config["projects"]["acme"].update(budget_daily_usd=5, budget_mode="hard")
    gateway = make_gateway(config)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    _, samples = scrape(gateway)
    labels = {"project": "acme", "period": "daily", "mode": "hard"}
    assert value(samples, "tollhouse_budget_limit_usd", **labels) == 5
    spent = Decimal(gateway.last()["cost_usd"])
    assert spent > 0
    assert value(samples, "tollhouse_budget_spent_usd", **labels) == pytest.approx(float(spent))
    assert value(samples, "tollhouse_budget_reserved_usd", **labels) == 0

    request = urllib.request.Request(gateway.url + "/metrics", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403


def test_label_values_are_bounded() -> None:
    from datetime import UTC, datetime

    from tollhouse.ledger.entry import LedgerEntry
    from tollhouse.metrics import GatewayMetrics
    from tollhouse.metrics.gateway import MAX_VALUES
    from tollhouse.pricing import Cost

    metrics = GatewayMetrics()
    for i in range(MAX_VALUES + 5):
        entry = LedgerEntry(
            datetime.now(UTC),
            f"r{i}",
            "p",
            "header",
            "openai-chat",
            200,
            False,
            1.0,
            provider="openai",
            model_requested=f"invented-{i}",
        )
        metrics.observe(entry, Cost(None, "no-usage"), 0.5)
    text = metrics.render().decode()
    assert 'model="other"' in text and f'model="invented-{MAX_VALUES + 4}"' not in text


def test_loop_owned_state_is_read_on_the_loop_at_scrape_time(
    make_gateway: GatewayFactory, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scrape renders in a thread; capacity's and budgets' dicts change on the loop
    as requests come, so iterating them from that thread could fail the scrape."""
    import threading

    from tollhouse.budgets.gate import BudgetGate
    from tollhouse.capacity import Capacity

    config = base_config(simulator.url)
    config["projects"]["acme"].update(budget_daily_usd=5)
    gateway = make_gateway(config)
    assert gateway.server.app is not None
    loop_thread = gateway.server.call(_current_thread())
    seen: list[str] = []
    for cls in (Capacity, BudgetGate):
        original = cls.stats if cls is Capacity else cls.status  # type: ignore[attr-defined]

        def spy(self: Any, *a: Any, _original: Any = original, **kw: Any) -> Any:
            seen.append(threading.current_thread().name)
            return _original(self, *a, **kw)

        monkeypatch.setattr(cls, "stats" if cls is Capacity else "status", spy)
    _, samples = scrape(gateway)
    assert "tollhouse_budget_limit_usd" in {name for name, _ in samples}
    assert seen and set(seen) == {loop_thread}


async def _current_thread() -> str:
    import threading

    return threading.current_thread().name
