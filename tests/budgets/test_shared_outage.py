"""Shared budgets through a Postgres outage and restart.

An outage is made for the test's own database only: its connections are cut
(``pg_terminate_backend``, what a restart looks like to a client) and, for a
lasting outage, new ones refused (``ALLOW_CONNECTIONS false``). While it
lasts a budgeted request is answered 503 "budget store unreachable" in its
client's dialect, never sent unreserved; afterwards the budgets reconnect on
their own and no settled cost is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anthropic
import openai
import psycopg
import pytest

from tests.budgets.test_budgets_e2e import MODEL, budget_config
from tests.conftest import ACME_KEY, KEY_ENV, PG_ADMIN, PROVIDER_KEY
from tollhouse.app import GATEWAY, create_app
from tollhouse.budgets.book import Budget
from tollhouse.budgets.shared import SharedBudgets
from tollhouse.errors import BudgetExceeded, BudgetStoreUnavailable
from tollhouse.ledger.store import connect
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
DIME = Decimal("0.1")


def cut(url: str) -> int:
    """Terminate every connection to the database of ``url``: a restart, as clients see it."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        return len(
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (url.rsplit("/", 1)[1],),
            ).fetchall()
        )


@contextmanager
def outage(url: str) -> Iterator[None]:
    """The database refuses connections until the block ends."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    cut(url)
    try:
        yield
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


def run(shared: SharedBudgets, fn: Any, *args: Any) -> Any:
    return shared.executor.submit(fn, *args).result(60)


@pytest.fixture
def shared(postgres_url: str) -> Iterator[SharedBudgets]:
    connect(postgres_url).close()  # migrated
    budgets = {"acme": Budget(daily=Decimal("0.3"), monthly=None, hard=True)}
    made = SharedBudgets(postgres_url, budgets, ttl=600)
    yield made
    made.close()


def test_a_cut_connection_is_replaced_without_the_caller_noticing(
    shared: SharedBudgets, postgres_url: str
) -> None:
    hold = run(shared, shared.reserve, "acme", DIME, NOW)
    assert cut(postgres_url) >= 1  # the budgets' connection was there, and is gone
    run(shared, shared.settle, hold, DIME)
    assert cut(postgres_url) >= 1
    assert run(shared, shared.reserve, "acme", DIME, NOW) is not None
    spent, reserved = shared.spent_and_reserved("acme", NOW)
    assert (spent["2026-12-01"], reserved["2026-12-01"]) == (DIME, DIME)
    assert shared.outages == 0


def test_in_an_outage_reserving_fails_clearly_and_settling_waits(
    shared: SharedBudgets, postgres_url: str
) -> None:
    first = run(shared, shared.reserve, "acme", DIME, NOW)
    with outage(postgres_url):
        with pytest.raises(BudgetStoreUnavailable) as err:
            run(shared, shared.reserve, "acme", DIME, NOW)
        assert err.value.status == 503 and "budget store unreachable" in err.value.message
        run(shared, shared.settle, first, DIME)  # can't be written: kept
    assert shared.outages >= 1
    run(shared, shared.reserve, "acme", DIME, NOW)  # back: the kept settlement goes first
    spent, reserved = shared.spent_and_reserved("acme", NOW)
    assert (spent["2026-12-01"], reserved["2026-12-01"]) == (DIME, DIME)
    run(shared, shared.reserve, "acme", DIME, NOW)
    with pytest.raises(BudgetExceeded):  # 0.1 spent + 0.2 held: the 0.3 budget is full
        run(shared, shared.reserve, "acme", DIME, NOW)


def test_gateways_answer_503_in_the_clients_dialect_and_recover(
    simulator: Simulator, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    settings = parse_settings(budget_config(simulator, budget_daily_usd=3, budget_mode="hard"))
    servers = [
        BackgroundServer(lambda: create_app(settings, ledger_path=postgres_url)).start()
        for _ in range(3)
    ]
    chat = {"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}

    def oa(server: BackgroundServer) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{server.url}/v1", api_key=ACME_KEY, max_retries=0)

    try:
        oa(servers[0]).chat.completions.create(**chat)  # $1 of $3
        billed = len(simulator.bills())
        with outage(postgres_url):
            with pytest.raises(openai.APIStatusError) as refused:
                oa(servers[1]).chat.completions.create(**chat)
            assert refused.value.status_code == 503
            assert "budget store unreachable" in refused.value.message
            claude = anthropic.Anthropic(base_url=servers[2].url, api_key=ACME_KEY, max_retries=0)
            with pytest.raises(anthropic.APIStatusError) as refused_too:
                claude.messages.create(
                    model="anthropic/claude-sonnet-4-5",
                    max_tokens=1,
                    messages=[{"role": "user", "content": "x"}],
                )
            assert refused_too.value.status_code == 503
            assert refused_too.value.body["error"]["type"] == "api_error"  # type: ignore[index]
            assert refused_too.value.response.headers["retry-after"] == "1"
        assert len(simulator.bills()) == billed  # nothing was sent unreserved
        statuses = []
        for n in range(4):  # reconnected, each on its own: $2 more, then the budget is full
            try:
                oa(servers[n % 3]).chat.completions.create(**chat)
                statuses.append(200)
            except openai.APIStatusError as exc:
                statuses.append(exc.status_code)
        assert statuses == [200, 200, 402, 402]
        for server in servers:
            server.call(server.app[GATEWAY].settle())  # type: ignore[index]
    finally:
        for server in servers:
            server.stop()
    conn = connect(postgres_url, readonly=True)
    try:
        costs = conn.execute("SELECT cost_usd FROM requests WHERE cost_usd IS NOT NULL").fetchall()
    finally:
        conn.close()
    assert sum(Decimal(c) for (c,) in costs) == Decimal(3)
