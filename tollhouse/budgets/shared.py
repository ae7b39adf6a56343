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

>>> shared = SharedBudgets(url, budgets, ttl=900)
>>> hold = shared.reserve("acme", Decimal("0.02"), now)   # BudgetExceeded when over
>>> shared.settle(hold, Decimal("0.013"))
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollhouse.budgets.book import ZERO, Budget, Hold, over_budget, periods
from tollhouse.errors import BudgetExceeded
from tollhouse.ledger.store import Location, connect

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

    def reserve(self, project: str, amount: Decimal, now: datetime) -> Hold | None:
        budget = self.budgets.get(project)
        if budget is None:
            return None
        day, month = periods(now)
        hold = Hold(project, amount, day, month, ref=secrets.token_hex(8))
        with self._transaction() as conn:
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
        return hold

    def settle(self, hold: Hold, cost: Decimal | None) -> None:
        """The hold becomes its real cost (None: unpriced, counts as 0)."""
        if hold.settled:
            return
        hold.settled = True
        with self._transaction() as conn:
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
        with self._transaction() as conn:
            return self._lock(conn, project, day, month), self._reserved(conn, project, day, month)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()

    def _transaction(self) -> Any:
        if self._conn is None:
            self._conn = connect(self.location)
        self._conn.execute("BEGIN")
        return self._conn  # PgConnection: commits on a clean exit, rolls back on an error

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


def _spent(conn: Any, project: str, period: str) -> Decimal:
    """What the ledger already holds for ``project`` in the day or month ``period``."""
    rows = conn.execute(
        "SELECT cost_usd FROM requests WHERE project = ? AND substr(ts, 1, ?) = ? "
        "AND cost_usd IS NOT NULL",
        (project, len(period), period),
    ).fetchall()
    return sum((Decimal(cost) for (cost,) in rows), ZERO)
