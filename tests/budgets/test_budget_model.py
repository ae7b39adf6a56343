"""Budgets, model-based: random request sequences against a reference model.

The reference model is a few lines of exact arithmetic: a hard project and a
soft one, each with a daily and a monthly limit; a request reserves its
worst case (its output maximum, or the 4,096-token cap, times ``n``), is
refused when that doesn't fit a hard budget, warned about when it doesn't
fit a soft one, and settles at its real cost. Hypothesis drives the real
gateway (one instance on SQLite; three sharing a Postgres ledger) with
requests of random prompt sizes, ``n``, ``max_tokens`` (or none), answer
lengths, streams, provider faults and clock moves across midnights and
month ends. After every step:

* the ledger's spend per project and period is within every hard limit;
* the model's allow/deny, and the soft warning, match the gateway's where
  the model is certain (a stream cut mid-answer makes its cost a range);
* the ledger's spend lies within the model's range.

Prices make costs exact and known: input is free, output is $0.001 a token.
Each example starts in a month of its own (the clock jumps), so examples
never share a period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.budgets.test_budgets_e2e import MODEL, budget_config
from tests.budgets.test_periods import Clock
from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY, GatewayFactory
from tollhouse.app import BUDGETS, GATEWAY, create_app
from tollhouse.budgets.bound import OUTPUT_CAP
from tollhouse.ledger.store import connect
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

PER_TOKEN = Decimal("0.001")
LIMITS = {  # project: (daily, monthly, hard)
    "acme": (Decimal(12), Decimal(30), True),
    "soft": (Decimal(6), Decimal(15), False),
}
START = datetime(2030, 1, 1, 6, tzinfo=UTC)


def model_config(sim: Simulator) -> dict[str, Any]:
    config = budget_config(sim)
    config["projects"]["acme"].update(
        budget_daily_usd=12, budget_monthly_usd=30, budget_mode="hard"
    )
    config["projects"]["soft"] = {"budget_daily_usd": 6, "budget_monthly_usd": 15}
    config["prices"][f"openai/{MODEL}"] = {"input": 0, "output": 1000}  # $0.001 a token
    config["capacity"] = {"max_attempts": 1}  # a fault is the answer, not retried
    return config


@dataclass
class Period:
    """Spend in one day or month: exact, or a range after a cut stream."""

    lo: Decimal = Decimal(0)
    hi: Decimal = Decimal(0)


@dataclass
class Model:
    clock: Clock
    spent: dict[tuple[str, str], Period] = field(default_factory=dict)

    def periods(self) -> tuple[str, str]:
        day = self.clock.now.date().isoformat()
        return day, day[:7]

    def verdict(self, project: str, reserve: Decimal) -> bool | None:
        """True: over (refused if hard, warned if soft); False: fits; None: uncertain."""
        daily, monthly, _ = LIMITS[project]
        day, month = self.periods()
        answers = set()
        for end in ("lo", "hi"):
            over = False
            for limit, period in ((daily, day), (monthly, month)):
                s = getattr(self.spent.get((project, period), Period()), end)
                over |= s >= limit or s + reserve > limit
            answers.add(over)
        return answers.pop() if len(answers) == 1 else None

    def settle(self, project: str, lo: Decimal, hi: Decimal) -> None:
        for period in self.periods():
            p = self.spent.setdefault((project, period), Period())
            p.lo += lo
            p.hi += hi


@dataclass
class Gateways:
    urls: list[str]
    settle: Callable[[], None]
    spend: Callable[[], dict[tuple[str, str], Decimal]]  # (project, day or month) -> ledger
    clock: Clock


class BudgetMachine(RuleBasedStateMachine):
    gateways: Gateways

    def __init__(self) -> None:
        super().__init__()
        clock = self.gateways.clock
        # A month of its own for this example: periods never carry over between examples.
        clock.now = datetime(clock.now.year + (clock.now.month == 12), clock.now.month % 12 + 1, 1)
        clock.now = clock.now.replace(hour=6, tzinfo=UTC)
        self.model = Model(clock)
        self.first_month = clock.now.date().isoformat()[:7]  # earlier ones: other examples'

    @initialize()
    def begin(self) -> None:
        self.gateways.settle()

    @rule(
        hard=st.booleans(),
        instance=st.integers(0, 2),
        prompt=st.text(min_size=1, max_size=300),
        n=st.integers(1, 4),
        max_tokens=st.one_of(st.none(), st.integers(1, 3000)),
        answer=st.integers(1, 6000),
        stream=st.booleans(),
        fault=st.sampled_from(["", "", "", "server_error", "rate_limit", "cut=2"]),
    )
    def request(
        self,
        hard: bool,
        instance: int,
        prompt: str,
        n: int,
        max_tokens: int | None,
        answer: int,
        stream: bool,
        fault: str,
    ) -> None:
        project = "acme" if hard else "soft"
        if fault == "cut=2" and not stream:
            fault = ""
        cap = max_tokens if max_tokens is not None else (OUTPUT_CAP if hard else None)
        reserve = Decimal((cap or OUTPUT_CAP) * n) * PER_TOKEN
        expected = self.model.verdict(project, reserve)
        url = self.gateways.urls[instance % len(self.gateways.urls)]
        status, warning = send(url, project, prompt, n, max_tokens, answer, stream, fault)
        self.gateways.settle()
        if hard and expected is not None:
            assert (status == 402) == expected, (status, expected, self.model)
        if not hard:
            assert status != 402
            if expected is not None and status == 200:
                assert (warning is not None) == expected, (warning, self.model)
        if status == 200:
            full = Decimal(min(answer, cap) if cap else answer) * n * PER_TOKEN
            lo = Decimal(0) if fault.startswith("cut") else full
            self.model.settle(project, lo, full)

    @rule(hours=st.integers(1, 40))
    def time_passes(self, hours: int) -> None:
        self.model.clock.advance(hours=hours)

    @invariant()
    def ledger_within_hard_budgets_and_the_model(self) -> None:
        spend = self.gateways.spend()
        for (project, period), amount in spend.items():
            daily, monthly, hard = LIMITS[project]
            limit = daily if len(period) == 10 else monthly
            if hard:
                assert amount <= limit, (project, period, amount)
            if period[:7] < self.first_month:
                continue
            known = self.model.spent.get((project, period), Period())
            assert known.lo <= amount <= known.hi, (project, period, amount, known)


def send(
    url: str,
    project: str,
    prompt: str,
    n: int,
    max_tokens: int | None,
    answer: int,
    stream: bool,
    fault: str,
) -> tuple[int, str | None]:
    headers = {"x-sim-output-tokens": str(answer)}
    if fault:
        headers["x-sim-fault"] = fault
    if project == "acme":
        key = ACME_KEY
    else:  # no virtual key: the header decides
        key, headers["X-Tollhouse-Project"] = "sk-own", project
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    extra: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    messages: Any = [{"role": "user", "content": prompt}]
    try:
        if stream:
            with client.chat.completions.with_streaming_response.create(
                model=MODEL, messages=messages, n=n, stream=True, extra_headers=headers, **extra
            ) as response:
                try:
                    for _ in response.iter_lines():
                        pass
                except Exception:  # a cut stream: the gateway still meters what went out
                    pass
                return response.status_code, response.headers.get("x-tollhouse-budget")
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, n=n, extra_headers=headers, **extra
        )
        return raw.status_code, raw.headers.get("x-tollhouse-budget")
    except openai.APIStatusError as exc:
        return exc.status_code, exc.response.headers.get("x-tollhouse-budget")
    finally:
        client.close()


def _spend(rows: list[tuple[str, str, Any]]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for project, ts, cost in rows:
        if cost is None or project not in LIMITS:
            continue
        for period in (ts[:10], ts[:7]):
            out[(project, period)] = out.get((project, period), Decimal(0)) + Decimal(cost)
    return out


SPEND = "SELECT project, ts, cost_usd FROM requests"
# No shrinking: the gateways' ledger outlives an example, so a replay isn't a clean
# rerun; the failing sequence is reported as it was generated.
RUN = settings(
    max_examples=10,
    stateful_step_count=16,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)


def test_budgets_match_the_model_on_one_instance(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    harness = make_gateway(model_config(simulator))
    clock = Clock(START)
    assert harness.server.app is not None
    harness.server.app[BUDGETS].clock = clock

    def spend() -> dict[tuple[str, str], Decimal]:
        return _spend([(r["project"], r["ts"], r["cost_usd"]) for r in harness.rows()])

    BudgetMachine.gateways = Gateways([harness.url], harness.settle, spend, clock)
    run_state_machine_as_test(BudgetMachine, settings=RUN)


def test_budgets_match_the_model_on_three_instances_sharing_postgres(
    simulator: Simulator, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    config = parse_settings(model_config(simulator))
    clock = Clock(START)

    def factory() -> Any:
        app = create_app(config, ledger_path=postgres_url)
        app[BUDGETS].clock = clock
        return app

    servers = [BackgroundServer(factory, handler_cancellation=True).start() for _ in range(3)]

    def settle() -> None:
        for server in servers:
            assert server.app is not None
            server.call(server.app[GATEWAY].settle())
            shared = server.app[BUDGETS].shared
            shared.executor.submit(lambda: None).result(60)  # its settlements are written

    def spend() -> dict[tuple[str, str], Decimal]:
        conn = connect(postgres_url, readonly=True)
        try:
            return _spend(conn.execute(SPEND).fetchall())
        finally:
            conn.close()

    try:
        BudgetMachine.gateways = Gateways([s.url for s in servers], settle, spend, clock)
        run_state_machine_as_test(BudgetMachine, settings=RUN)
    finally:
        for server in servers:
            server.stop()
