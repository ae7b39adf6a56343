"""Budget periods: rollover at UTC midnight and month end, and budgets changed by a restart.

What is defined (and tested here with a clock the tests set, no sleeping):

* A request counts in the UTC day and month it **started** in: its hold is
  taken then, its ledger row is dated then, and its real cost settles into
  that day even when the answer ends after midnight.
* At midnight the new day starts with nothing spent; holds of requests
  still in flight from the day before count against the day before, not
  the new day. The month carries on until its own end.
* Budgets are read from the config when the gateway starts; there is no
  live reload. A restart with a changed budget applies it at once to what
  the ledger already holds for the period: lowered below the spend, it
  refuses the next request; raised, it allows the difference. Requests in
  flight at a restart are drained first and their cost is in the ledger the
  new process reads. With instances sharing Postgres, the spend and the
  holds are shared and each instance applies its own configured limit to
  them, so a hold taken by one instance counts against another's new limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.budgets.test_budgets_e2e import MODEL, budget_config
from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY
from tollhouse.app import BUDGETS, GATEWAY, create_app
from tollhouse.budgets.book import Budget, BudgetBook
from tollhouse.errors import BudgetExceeded
from tollhouse.ledger.store import connect
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

ONE = Decimal(1)
EVENING = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)


class Clock:
    """A clock the test moves: ``clock()`` is now."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def test_the_book_counts_a_request_in_the_day_and_month_it_started() -> None:
    book = BudgetBook({"acme": Budget(daily=Decimal(2), monthly=Decimal(3), hard=True)})
    late = book.reserve("acme", ONE, EVENING)
    assert late is not None
    book.reserve("acme", ONE, EVENING)
    with pytest.raises(BudgetExceeded, match="daily"):
        book.reserve("acme", ONE, EVENING)
    midnight = EVENING + timedelta(seconds=2)  # 1 December: a new day and a new month
    assert book.reserve("acme", ONE, midnight) is not None  # yesterday's holds stay yesterday's
    book.settle(late, ONE)  # settled after midnight: into 30 November
    status = {(s["window"]): s for s in book.status(EVENING)}
    assert status["2026-11-30"]["spent_usd"] == "1" and status["2026-11"]["spent_usd"] == "1"
    assert status["2026-11-30"]["reserved_usd"] == "1"
    assert {s["window"]: s["spent_usd"] for s in book.status(midnight)} == {
        "2026-12-01": "0",
        "2026-12": "0",
    }


def test_the_month_is_shared_by_its_days() -> None:
    book = BudgetBook({"acme": Budget(daily=Decimal(2), monthly=Decimal(3), hard=True)})
    day = datetime(2026, 12, 1, 12, tzinfo=UTC)
    for _ in range(2):
        hold = book.reserve("acme", ONE, day)
        assert hold is not None
        book.settle(hold, ONE)
    next_day = day + timedelta(days=1)
    book.settle(book.reserve("acme", ONE, next_day), ONE)  # type: ignore[arg-type]
    with pytest.raises(BudgetExceeded, match="monthly"):
        book.reserve("acme", ONE, next_day)  # the day has room, the month hasn't


def _gateway(settings: Any, ledger: Any, clock: Clock) -> Callable[[], Any]:
    def factory() -> Any:
        app = create_app(settings, ledger_path=ledger)
        app[BUDGETS].clock = clock  # before startup: the spend so far is read for its periods
        return app

    return factory


def _ask(url: str, **extra: Any) -> int:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0)
    try:
        client.chat.completions.create(
            model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "x"}], **extra
        )
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code


@pytest.fixture
def provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)


def _spend_by_day(ledger: Any) -> dict[str, Decimal]:
    conn = connect(ledger, readonly=True)
    try:
        rows = conn.execute(
            "SELECT substr(ts, 1, 10), cost_usd FROM requests WHERE cost_usd IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    out: dict[str, Decimal] = {}
    for day, cost in rows:
        out[day] = out.get(day, Decimal(0)) + Decimal(cost)
    return out


def _held(url: str) -> Iterator[Any]:
    """A streamed request the simulator holds open after its first frame: in flight."""
    client = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key=ACME_KEY,
        max_retries=0,
        default_headers={"x-sim-fault": "hold=1"},
    )
    stream = client.chat.completions.create(
        model=MODEL, max_tokens=1, stream=True, messages=[{"role": "user", "content": "x"}]
    )
    next(iter(stream))  # its hold is taken, its answer has begun
    return stream  # type: ignore[no-any-return]


def test_midnight_with_a_request_in_flight(
    simulator: Simulator, tmp_path: Path, provider_key: None
) -> None:
    settings = parse_settings(
        budget_config(simulator, budget_daily_usd=2, budget_monthly_usd=10, budget_mode="hard")
    )
    ledger, clock = tmp_path / "ledger.db", Clock(EVENING)
    with BackgroundServer(_gateway(settings, ledger, clock), handler_cancellation=True) as srv:
        in_flight = _held(srv.url)  # $1 held on 30 November
        assert [_ask(srv.url), _ask(srv.url)] == [200, 402]
        clock.advance(seconds=2)  # 1 December, 00:00:01
        assert [_ask(srv.url), _ask(srv.url), _ask(srv.url)] == [200, 200, 402]
        in_flight.close()  # ends after midnight; counts on the day it started
        assert srv.app is not None
        srv.call(srv.app[GATEWAY].settle())
        status = {s["window"]: s for s in srv.app[BUDGETS].status()}
        assert status["2026-12-01"]["reserved_usd"] == "0"
    by_day = _spend_by_day(ledger)
    assert by_day["2026-12-01"] == 2 and by_day["2026-11-30"] <= 2


def test_a_restart_applies_a_changed_budget_to_the_spend_so_far(
    simulator: Simulator, tmp_path: Path, provider_key: None
) -> None:
    ledger, clock = tmp_path / "ledger.db", Clock(datetime(2026, 12, 1, 9, tzinfo=UTC))

    def serve(daily: int, asks: int) -> list[int]:
        config = budget_config(simulator, budget_daily_usd=daily, budget_mode="hard")
        settings = parse_settings(config)
        factory = _gateway(settings, ledger, clock)
        with BackgroundServer(factory, handler_cancellation=True) as srv:
            got = [_ask(srv.url) for _ in range(asks)]
            assert srv.app is not None
            srv.call(srv.app[GATEWAY].settle())
            return got

    assert serve(daily=3, asks=2) == [200, 200]  # $2 of $3
    assert serve(daily=1, asks=1) == [402]  # lowered below the spend: refused at once
    assert serve(daily=5, asks=4) == [200, 200, 200, 402]  # raised: the difference, no more
    clock.advance(days=1)
    assert serve(daily=1, asks=2) == [200, 402]  # a new day, its own $1
    assert _spend_by_day(ledger) == {"2026-12-01": 5, "2026-12-02": 1}


def test_a_hold_on_one_instance_counts_against_anothers_new_limit(
    simulator: Simulator, postgres_url: str, provider_key: None
) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    generous = parse_settings(budget_config(simulator, budget_daily_usd=3, budget_mode="hard"))
    strict = parse_settings(budget_config(simulator, budget_daily_usd=1, budget_mode="hard"))
    with BackgroundServer(
        _gateway(generous, postgres_url, clock), handler_cancellation=True
    ) as first:
        in_flight = _held(first.url)  # $1 held in Postgres by the first instance
        with BackgroundServer(
            _gateway(strict, postgres_url, clock), handler_cancellation=True
        ) as second:
            assert _ask(second.url) == 402  # its $1 limit is taken by the other's hold
            assert _ask(first.url) == 200  # the first applies its own $3 to the same spend
            in_flight.close()
            assert first.app is not None
            first.call(first.app[GATEWAY].settle())
            assert _ask(second.url) == 402  # $1 spent by the first instance: still full
