"""Budgets reserved atomically across instances that share a Postgres ledger.

Each instance's in-memory :class:`~tollhouse.budgets.book.BudgetBook` only
knows its own requests; with several instances a hard budget would let each
of them spend it. Shared, a reservation is one transaction on the ledger:
lock the project's period rows (``SELECT ... FOR UPDATE``), add up the live
holds, decide with the book's own rule (:func:`over_budget`), insert the
hold, commit. Two instances reserving at once queue on the row lock, so the
budget allows as many calls as it covers, however they are spread.

A hold lapses after ``ttl`` seconds (longer than any request may take), so a
crashed instance's reservations come back. Money stays exact: amounts are
decimal text, added in Python under the lock.

Outages: a connection Postgres cut (a restart, ``pg_terminate_backend``) is
replaced and the transaction tried once more on a new one. While Postgres
stays unreachable a budgeted request is refused with
:class:`~tollhouse.errors.BudgetStoreUnavailable` (503, in the client's
dialect, with Retry-After): sending it unreserved would let a hard budget
be overspent. A settlement that can't be written waits in memory and is
written before anything else once Postgres answers, so its hold's cost is
never lost to the budget (until then its hold still counts, in full).

>>> shared = SharedBudgets(url, budgets, ttl=900)
>>> hold = shared.reserve("acme", Decimal("0.02"), now)   # BudgetExceeded when over
>>> shared.settle(hold, Decimal("0.013"))
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from tollhouse.budgets.book import ZERO, Budget, Hold, over_budget, periods
from tollhouse.errors import BudgetExceeded, BudgetStoreUnavailable, ConfigError
from tollhouse.ledger.store import Location, connect

log = logging.getLogger("tollhouse.budgets")
T = TypeVar("T")
UNREACHABLE = (
    "budget store unreachable: the shared Postgres ledger that holds this project's "
    "budget isn't answering ({why}); the request was not sent. Retry shortly"
)

LOCK = (
    "SELECT period, spent_usd FROM budget_periods WHERE project = ? AND period IN (?, ?) "
    "ORDER BY period FOR UPDATE"
)


class SharedBudgets:
    """The budget book kept in the shared ledger; used from its own thread."""

    def __init__(self, location: Location, budgets: dict[str, Budget], *, ttl: float) -> None:
        self.location, self.budgets, self.ttl = location, budgets, ttl
        # One thread, one connection: the event loop never waits on Postgres.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="tollhouse-budgets")
        self._conn: Any = None
        self._unsettled: list[tuple[Hold, Decimal | None]] = []  # written once Postgres is back
        self.outages = 0

    def reserve(self, project: str, amount: Decimal, now: datetime) -> Hold | None:
        """Hold ``amount`` (BudgetExceeded over a hard budget, BudgetStoreUnavailable in an
        outage); None when ``project`` has no budget."""
        budget = self.budgets.get(project)
        if budget is None:
            return None
        hold = Hold(project, amount, *periods(now), ref=secrets.token_hex(8))
        self._run(lambda conn: self._reserve(conn, budget, hold))
        return hold

    def _reserve(self, conn: Any, budget: Budget, hold: Hold) -> None:
        project, day, month, amount = hold.project, hold.day, hold.month, hold.amount
        with self._transaction(conn):
            spent = self._lock(conn, project, day, month)
            reserved = self._reserved(conn, project, day, month)
            over = over_budget(budget, hold, spent, reserved)
            if over is not None and budget.hard:
                raise BudgetExceeded(over)
            hold.warning = over
            conn.execute(
                "INSERT INTO budget_holds (ref, project, day, month, amount_usd, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (hold.ref, project, day, month, format(amount, "f"), time.time() + self.ttl),
            )

    def settle(self, hold: Hold, cost: Decimal | None) -> None:
        """The hold becomes its real cost (None: unpriced, counts as 0); kept for later
        when Postgres can't be reached."""
        if hold.settled:
            return
        hold.settled = True
        self._unsettled.append((hold, cost))
        with contextlib.suppress(BudgetStoreUnavailable):  # kept; written on the next call
            self._run(lambda conn: None)

    def _settle(self, conn: Any, hold: Hold, cost: Decimal | None) -> None:
        with self._transaction(conn):
            spent = self._lock(conn, hold.project, hold.day, hold.month)
            for period in (hold.day, hold.month):
                conn.execute(
                    "UPDATE budget_periods SET spent_usd = ? WHERE project = ? AND period = ?",
                    (format(spent[period] + (cost or ZERO), "f"), hold.project, period),
                )
            conn.execute("DELETE FROM budget_holds WHERE ref = ?", (hold.ref,))

    def spent_and_reserved(
        self, project: str, now: datetime
    ) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """From any thread: runs on the budgets' own (its connection's) thread."""
        return self.executor.submit(self._spent_and_reserved, project, now).result(30)

    def _spent_and_reserved(
        self, project: str, now: datetime
    ) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        day, month = periods(now)

        def read(conn: Any) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
            with self._transaction(conn):
                return self._lock(conn, project, day, month), self._reserved(
                    conn, project, day, month
                )

        return self._run(read)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()

    def _run(self, work: Callable[[Any], T]) -> T:
        """``work`` on a live connection, after any settlements still waiting.

        A connection that breaks is replaced and everything tried once more; a
        second failure is an outage (BudgetStoreUnavailable).
        """
        for attempt in (1, 2):
            try:
                conn = self._connection()
                while self._unsettled:
                    self._settle_waiting(conn)
                return work(conn)
            except BudgetExceeded:
                raise
            except Exception as exc:
                if not _outage(exc):
                    raise
                self._drop()
                if attempt == 2:
                    self.outages += 1
                    log.warning("shared budgets: Postgres unreachable: %s", _first_line(exc))
                    raise BudgetStoreUnavailable(
                        UNREACHABLE.format(why=_first_line(exc)), retry_after=1
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle_waiting(self, conn: Any) -> None:
        hold, cost = self._unsettled[0]
        try:
            self._settle(conn, hold, cost)
        except Exception as exc:
            if _outage(exc):
                raise
            log.exception("shared budgets: settling %s failed; its hold lapses", hold.ref)
        self._unsettled.pop(0)

    def _connection(self) -> Any:
        if self._conn is None:
            try:
                self._conn = connect(self.location)
            except ConfigError as exc:  # "can't reach Postgres": an outage, here
                raise Unreachable(str(exc)) from exc
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: Any) -> Iterator[Any]:
        conn.execute("BEGIN")
        with conn:  # PgConnection: commits on a clean exit, rolls back on an error
            yield conn

    def _lock(self, conn: Any, project: str, day: str, month: str) -> dict[str, Decimal]:
        rows = dict(conn.execute(LOCK, (project, day, month)).fetchall())
        missing = [p for p in (day, month) if p not in rows]
        if missing:  # the period's first request anywhere: seed it from the ledger
            for period in missing:
                conn.execute(
                    "INSERT INTO budget_periods (project, period, spent_usd) VALUES (?, ?, ?) "
                    "ON CONFLICT (project, period) DO NOTHING",
                    (project, period, format(_spent(conn, project, period), "f")),
                )
            rows = dict(conn.execute(LOCK, (project, day, month)).fetchall())
        return {period: Decimal(value) for period, value in rows.items()}

    def _reserved(self, conn: Any, project: str, day: str, month: str) -> dict[str, Decimal]:
        out = {day: ZERO, month: ZERO}
        conn.execute(
            "DELETE FROM budget_holds WHERE project = ? AND expires < ?", (project, time.time())
        )
        for hold_day, amount in conn.execute(
            "SELECT day, amount_usd FROM budget_holds WHERE project = ? AND month = ?",
            (project, month),
        ).fetchall():
            out[month] += Decimal(amount)
            if hold_day == day:
                out[day] += Decimal(amount)
        return out


class Unreachable(Exception):
    """Postgres refused a new connection."""


def _outage(exc: BaseException) -> bool:
    """psycopg's OperationalError (connection refused or cut) and InterfaceError (closed)."""
    if isinstance(exc, Unreachable):
        return True
    names = {k.__name__ for k in type(exc).__mro__}
    return type(exc).__module__.startswith("psycopg") and bool(
        names & {"OperationalError", "InterfaceError"}
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _spent(conn: Any, project: str, period: str) -> Decimal:
    """What the ledger already holds for ``project`` in the day or month ``period``."""
    rows = conn.execute(
        "SELECT cost_usd FROM requests WHERE project = ? AND substr(ts, 1, ?) = ? "
        "AND cost_usd IS NOT NULL",
        (project, len(period), period),
    ).fetchall()
    return sum((Decimal(cost) for (cost,) in rows), ZERO)
