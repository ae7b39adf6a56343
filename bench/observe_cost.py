"""Micro-benchmark: what do metrics and budgets add to one request's deferred step?

Times ``GatewayMetrics.observe`` (the per-request Prometheus update, made
after the response is sent) and a budget hold + settle (on the request path,
only for projects with a budget) on realistic entries, best of several
rounds, in microseconds per request. For scale: pricing one call is ~2 µs
and building its ledger row ~15 µs.

    .venv/bin/python bench/observe_cost.py
    .venv/bin/python bench/observe_cost.py --rounds 9 --repeat 50000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from tollhouse.budgets.gate import BudgetGate
from tollhouse.ledger.entry import LedgerEntry
from tollhouse.metering.usage import Usage
from tollhouse.metrics import GatewayMetrics
from tollhouse.pricing import Cost, Pricer
from tollhouse.settings import parse_settings


def entry(i: int) -> LedgerEntry:
    return LedgerEntry(
        ts=datetime.now(UTC),
        request_id=f"r{i}",
        project=("acme", "globex", "initech")[i % 3],
        attribution="header",
        dialect="openai-chat",
        status=200 if i % 50 else 429,
        stream=False,
        latency_ms=812.5,
        provider="openai",
        model_served=("gpt-4o-mini", "gpt-4o")[i % 2],
        usage=Usage(input_tokens=1200, cached_input_tokens=1024, output_tokens=40),
        trust="full",
        queue_wait_ms=3.0 if i % 10 == 0 else 0.0,
        error_class=None if i % 50 else "rate_limit",
    )


def best(fn: Callable[[int], None], repeat: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(repeat):
            fn(i)
        times.append((time.perf_counter() - start) / repeat)
    return min(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20000)
    args = parser.parse_args()

    metrics = GatewayMetrics()
    entries = [entry(i) for i in range(64)]
    cost = Cost(Decimal("0.000123"), "genai-prices")
    observe = best(
        lambda i: metrics.observe(entries[i % 64], cost, 800.0), args.repeat, args.rounds
    )

    settings = parse_settings(
        {"projects": {"acme": {"budget_daily_usd": 1e12, "budget_mode": "hard"}}}
    )
    pricer = Pricer({})
    gate = BudgetGate.from_settings(settings, pricer)
    assert gate is not None
    route = SimpleNamespace(
        provider=SimpleNamespace(name="openai", price_provider="openai"), model="gpt-4o-mini"
    )
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 2000}]}

    def hold_settle(i: int) -> None:
        hold = gate.hold("acme", route, payload)
        assert hold is not None
        gate.settle(hold, Decimal("0.0001"))

    budget = best(hold_settle, args.repeat // 4, args.rounds)
    skipped = best(lambda i: gate.applies("globex"), args.repeat, args.rounds)
    print(f"metrics observe per request:         {observe:6.2f} µs")
    print(f"budget hold + settle (budgeted):     {budget:6.2f} µs")
    print(f"budget check (project without one):  {skipped:6.2f} µs")


if __name__ == "__main__":
    main()
