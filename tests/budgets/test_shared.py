"""Budgets shared by instances: reservations are atomic across them (Postgres ledger).

Two "instances" (each a SharedBudgets with its own connection, as two
gateways would have) reserve from many threads at once against one hard
daily budget that covers exactly ten holds: exactly ten are granted, and
settling frees the reservation into spend both of them see.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.budgets.test_budgets_e2e import MODEL, budget_config
from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY
from tollhouse.app import GATEWAY, create_app
from tollhouse.budgets.book import Budget, Hold
from tollhouse.budgets.shared import SharedBudgets
from tollhouse.errors import BudgetExceeded
from tollhouse.ledger.store import connect
from tollhouse.settings import parse_settings
from tollhouse.testing import BackgroundServer

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
ONE = Decimal("0.1")  # float-hostile: ten of them must be exactly 1.0


@pytest.fixture
def instances(postgres_url: str) -> list[SharedBudgets]:
    connect(postgres_url).close()  # migrated
    budgets = {"acme": Budget(daily=Decimal("1.0"), monthly=None, hard=True)}
    made = [SharedBudgets(postgres_url, budgets, ttl=600) for _ in range(2)]
    yield made  # type: ignore[misc]
    for shared in made:
        shared.close()


def test_hard_budget_grants_exactly_what_it_covers_across_instances(
    instances: list[SharedBudgets],
) -> None:
    granted: list[Hold] = []
    refused: list[str] = []
    lock = threading.Lock()

    def ask(shared: SharedBudgets) -> None:
        for _ in range(5):
            try:
                hold = shared.executor.submit(shared.reserve, "acme", ONE, NOW).result()
            except BudgetExceeded as exc:
                with lock:
                    refused.append(str(exc))
                continue
            assert hold is not None
            with lock:
                granted.append(hold)

    threads = [threading.Thread(target=ask, args=(instances[n % 2],)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(granted) == 10 and len(refused) == 20
    assert "budget_daily_usd" in refused[0]
    spent, reserved = instances[1].spent_and_reserved("acme", NOW)
    assert spent["2026-12-01"] == 0 and reserved["2026-12-01"] == Decimal("1.0")
    for n, hold in enumerate(granted):  # real costs: half the worst case
        instances[n % 2].executor.submit(instances[n % 2].settle, hold, ONE / 2).result()
    spent, reserved = instances[0].spent_and_reserved("acme", NOW)
    assert spent["2026-12-01"] == Decimal("0.50") and reserved["2026-12-01"] == 0
    extra = [instances[1].executor.submit(instances[1].reserve, "acme", ONE, NOW).result()]
    assert all(extra)  # the settled half is available again, to either instance


def test_a_crashed_instances_holds_lapse(postgres_url: str) -> None:
    connect(postgres_url).close()
    budgets = {"acme": Budget(daily=Decimal("0.1"), monthly=None, hard=True)}
    crashed = SharedBudgets(postgres_url, budgets, ttl=-1)  # holds already expired
    crashed.executor.submit(crashed.reserve, "acme", ONE, NOW).result()
    crashed.close()  # never settles, like a kill -9
    alive = SharedBudgets(postgres_url, budgets, ttl=600)
    try:
        assert alive.executor.submit(alive.reserve, "acme", ONE, NOW).result() is not None
        with pytest.raises(BudgetExceeded):
            alive.executor.submit(alive.reserve, "acme", ONE, NOW).result()
    finally:
        alive.close()


def test_two_gateways_on_one_postgres_ledger_share_a_hard_budget(
    simulator: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixty calls at once, half through each gateway, against $10: exactly ten served."""
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    settings = parse_settings(budget_config(simulator, budget_daily_usd=10, budget_mode="hard"))
    servers = [
        BackgroundServer(lambda: create_app(settings, ledger_path=postgres_url)).start()
        for _ in range(2)
    ]
    try:

        async def one(url: str) -> int:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=ACME_KEY, max_retries=0)
            try:
                await client.chat.completions.create(
                    model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "go"}]
                )
                return 200
            except openai.APIStatusError as exc:
                return exc.status_code
            finally:
                await client.close()

        async def all_at_once() -> list[int]:
            return await asyncio.gather(*(one(servers[n % 2].url) for n in range(60)))

        statuses = asyncio.run(all_at_once())
        for server in servers:
            server.call(server.app[GATEWAY].settle())  # type: ignore[index]
    finally:
        for server in servers:
            server.stop()
    assert statuses.count(200) == 10 and statuses.count(402) == 50
    conn = connect(postgres_url, readonly=True)
    try:
        costs = conn.execute("SELECT cost_usd FROM requests WHERE status = 200").fetchall()
        (spent,) = conn.execute(
            "SELECT spent_usd FROM budget_periods WHERE period LIKE '____-__-__'"
        ).fetchone()
    finally:
        conn.close()
    assert sum(Decimal(c) for (c,) in costs) == Decimal(10) == Decimal(spent)
