"""Budgets on the request path: estimate a request's worst-case cost, hold it, settle it.

The estimate is the capacity gate's token estimate (input characters / 4,
plus the requested max output) priced like a real call of the dearest
candidate, so contracted prices and discounts apply to it too. A request
whose model has no known price reserves nothing (and is recorded unpriced).

>>> gate = BudgetGate.from_settings(settings, pricer)
>>> gate.load(conn)                        # this UTC day's and month's spend so far
>>> hold = gate.hold("acme", candidates, payload)
>>> gate.settle(hold, Decimal("0.0123"))
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tollhouse.budgets.book import ZERO, Budget, BudgetBook, Hold, periods
from tollhouse.capacity.estimate import input_tokens, max_output_tokens
from tollhouse.metering.usage import Usage
from tollhouse.pricing import PriceQuery, Pricer
from tollhouse.settings import Settings

log = logging.getLogger("tollhouse.budgets")

BUDGET_HEADER = "X-Tollhouse-Budget"
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BudgetGate:
    """The book plus what it needs to price an estimate: the pricer and a clock."""

    def __init__(self, book: BudgetBook, pricer: Pricer, clock: Clock = _utcnow) -> None:
        self.book = book
        self.pricer = pricer
        self.clock = clock
        self.shared: Any = None  # tollhouse.budgets.shared.SharedBudgets: several instances

    def share(self, location: Any, ttl: float) -> None:
        """Keep the book in the shared ledger: reservations atomic across instances."""
        from tollhouse.budgets.shared import SharedBudgets

        self.shared = SharedBudgets(location, self.book.budgets, ttl=ttl)

    @classmethod
    def from_settings(
        cls, settings: Settings, pricer: Pricer, clock: Clock = _utcnow
    ) -> BudgetGate | None:
        """None when no project has a budget: the request path then skips budgets entirely."""
        budgets = {
            name: Budget(p.budget_daily_usd, p.budget_monthly_usd, p.budget_mode == "hard")
            for name, p in settings.projects.items()
            if p.has_budget
        }
        return cls(BudgetBook(budgets), pricer, clock) if budgets else None

    def applies(self, project: str) -> bool:
        return project in self.book.budgets

    def load(self, conn: sqlite3.Connection) -> None:
        """Seed the book with this UTC day's and month's spend per budgeted project.

        Shared budgets seed themselves, under their lock, on a period's first request.
        """
        if self.shared is not None:
            return
        day, month = periods(self.clock())
        for project in self.book.budgets:
            spent_day, spent_month = ZERO, ZERO
            rows = conn.execute(
                "SELECT substr(ts, 1, 10), cost_usd FROM requests "
                "WHERE project = ? AND ts >= ? AND cost_usd IS NOT NULL",
                (project, f"{month}-01"),
            )
            for ts_day, cost in rows:
                spent_month += Decimal(cost)
                if ts_day == day:
                    spent_day += Decimal(cost)
            self.book.seed(project, day, spent_day)
            self.book.seed(project, month, spent_month)

    def hold(self, project: str, routes: Sequence[Any], payload: dict[str, Any]) -> Hold | None:
        """Reserve the request's worst-case cost; raises BudgetExceeded on a hard budget.

        ``routes`` are the candidates (a chain's primary and fallbacks): any of them may
        answer, so the dearest one's estimate is held.
        """
        if project not in self.book.budgets:
            return None
        now = self.clock()
        return self._warned(self.book.reserve(project, self._worst(routes, payload, now), now))

    async def reserve(
        self, project: str, routes: Sequence[Any], payload: dict[str, Any]
    ) -> Hold | None:
        """:meth:`hold`, in the shared ledger when budgets are shared (off the loop)."""
        shared = self.shared
        if shared is None or project not in self.book.budgets:
            return self.hold(project, routes, payload)
        now = self.clock()
        amount = self._worst(routes, payload, now)
        loop = asyncio.get_running_loop()
        hold: Hold | None = await loop.run_in_executor(
            shared.executor, shared.reserve, project, amount, now
        )
        return self._warned(hold)

    def _worst(self, routes: Sequence[Any], payload: dict[str, Any], now: datetime) -> Decimal:
        return max((self.estimate(route, payload, now) for route in routes), default=ZERO)

    def _warned(self, hold: Hold | None) -> Hold | None:
        """A soft budget's first warning of the day goes to the log (the header, every time)."""
        if hold is not None and hold.warning and self.book.first_warning(hold):
            log.warning("%s", hold.warning)
        return hold

    def estimate(self, route: Any, payload: dict[str, Any], now: datetime) -> Decimal:
        usage = Usage(input_tokens=input_tokens(payload), output_tokens=max_output_tokens(payload))
        provider = route.provider
        query = PriceQuery(provider.name, provider.price_provider, (route.model,), usage, None, now)
        try:
            return self.pricer.cost(query).usd or ZERO
        except Exception:  # an estimate must never fail a request
            log.exception("budget estimate failed for %s/%s", provider.name, route.model)
            return ZERO

    def settle(self, hold: Hold, cost: Decimal | None) -> None:
        if self.shared is not None and hold.ref:
            self.shared.executor.submit(self.shared.settle, hold, cost)
        else:
            self.book.settle(hold, cost)

    def status(self) -> list[dict[str, Any]]:
        if self.shared is not None:  # what every instance spent and holds (scrape time)
            now = self.clock()
            book = BudgetBook(self.book.budgets)
            for project in self.book.budgets:
                spent, reserved = self.shared.spent_and_reserved(project, now)
                for period, amount in spent.items():
                    book.seed(project, period, amount)
                    book.reserve_seed(project, period, reserved[period])
            return book.status(now)
        return self.book.status(self.clock())
