"""Budgets on the request path: bound a request's worst-case cost, hold it, settle it.

The bound is :mod:`tollhouse.budgets.bound`'s token bound (bytes for text,
each provider's image rule, the context window for what only it bounds;
the output maximum times ``n``), priced like a real call of the dearest
candidate, with its input priced the dearest way it can be billed (plain,
or, when the request marks ``cache_control``, all written to the 1-hour
cache), so contracted prices and
discounts apply to it too. A request whose model has no known price
reserves nothing (and is recorded unpriced). A hard-budgeted request
without an output maximum gets one (:func:`~tollhouse.budgets.bound.cap_output`).

>>> gate = BudgetGate.from_settings(settings, pricer)
>>> gate.load(conn)                        # this UTC day's and month's spend so far
>>> hold = gate.hold("acme", candidates, payload)
>>> gate.settle(hold, Decimal("0.0123"))
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tollhouse.budgets.book import HARD, ZERO, Budget, BudgetBook, Hold, periods
from tollhouse.budgets.bound import UNKNOWN_CONTEXT, Bound, bound, cap_output, output_tokens
from tollhouse.errors import BudgetExceeded, BudgetStoreUnavailable
from tollhouse.metering.usage import Usage
from tollhouse.pricing import PriceQuery, Pricer

if TYPE_CHECKING:
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
            name: Budget(p.budget_daily_usd, p.budget_monthly_usd, p.budget_mode == HARD)
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

    def cap_output(self, project: str, payload: dict[str, Any], dialect: str, kind: str) -> bool:
        """Give a hard-budgeted request without an output maximum the one it is held for.

        True when ``payload`` changed (the caller re-encodes it). Soft budgets and
        projects without one are left as the client sent them.
        """
        budget = self.book.budgets.get(project)
        if budget is None or not budget.hard or output_tokens(payload)[1]:
            return False
        cap_output(payload, dialect, kind)
        return True

    def hold(
        self,
        project: str,
        routes: Sequence[Any],
        payload: dict[str, Any],
        now: datetime | None = None,
        body: bytes | None = None,
    ) -> Hold | None:
        """Reserve the request's worst-case cost; raises BudgetExceeded on a hard budget.

        ``routes`` are the candidates (a chain's primary and fallbacks): any of them may
        answer, so the dearest one's bound is held. ``now`` (the request's start, its
        ledger row's time) says which day and month it counts in; ``body`` (the
        payload's JSON, as it goes upstream) bounds its text.
        """
        if project not in self.book.budgets:
            return None
        now = now or self.clock()
        amount = self._worst(project, routes, payload, now, body)
        return self._warned(self.book.reserve(project, amount, now))

    async def reserve(
        self,
        project: str,
        routes: Sequence[Any],
        payload: dict[str, Any],
        now: datetime | None = None,
        body: bytes | None = None,
    ) -> Hold | None:
        """:meth:`hold`, in the shared ledger when budgets are shared (off the loop)."""
        shared = self.shared
        if shared is None or project not in self.book.budgets:
            return self.hold(project, routes, payload, now, body)
        now = now or self.clock()
        amount = self._worst(project, routes, payload, now, body)
        loop = asyncio.get_running_loop()
        hold: Hold | None = await loop.run_in_executor(
            shared.executor, shared.reserve, project, amount, now
        )
        return self._warned(hold)

    async def reserve_fan_out(
        self,
        project: str,
        stages: Sequence[tuple[Sequence[Sequence[Any]], int | None, int]],
        payload: dict[str, Any],
        now: datetime | None = None,
    ) -> Hold | None:
        """Hold a fused request's whole fan-out (tollhouse.fusion), all or nothing.

        ``stages`` run one after another: (groups of candidate routes that all
        run, an output cap for this stage or None for the request's own, input
        tokens this stage adds beyond the request's). Each group holds its
        dearest route's bound; a later stage's input also holds every earlier
        stage's most output (the judge reads the panel's answers, the writer both).
        """
        if project not in self.book.budgets:
            return None
        now = now or self.clock()
        body = json.dumps(payload).encode()
        total, carried = ZERO, 0
        for groups, cap, extra in stages:
            produced = 0
            for routes in groups:
                worst, most = ZERO, 0
                for route in routes:
                    found = self._checked(project, route, payload, body)
                    if cap is not None:
                        found = replace(found, output_tokens=cap)
                    if found.input_tokens is not None:
                        grown = found.input_tokens + carried + extra
                        found = replace(found, input_tokens=grown)
                    worst = max(worst, self._cost(route, found, now))
                    most = max(most, found.output_tokens)
                total, produced = total + worst, produced + most
            carried += produced
        return await self._reserve_amount(project, total, now)

    async def _reserve_amount(self, project: str, amount: Decimal, now: datetime) -> Hold | None:
        shared = self.shared
        if shared is None:
            return self._warned(self.book.reserve(project, amount, now))
        loop = asyncio.get_running_loop()
        hold: Hold | None = await loop.run_in_executor(
            shared.executor, shared.reserve, project, amount, now
        )
        return self._warned(hold)

    def _checked(self, project: str, route: Any, payload: dict[str, Any], body: bytes) -> Bound:
        found = self._bound(route, payload, body)
        if self.book.budgets[project].hard and found.unbounded:
            raise BudgetExceeded(
                f"project {project!r} has a hard budget, and the server-side tool "
                f"{found.unbounded!r} has no cost bound before the call (its results are "
                "billed as input, with per-call fees); call it from a project without a "
                "hard budget"
            )
        return found

    def _worst(
        self,
        project: str,
        routes: Sequence[Any],
        payload: dict[str, Any],
        now: datetime,
        body: bytes | None,
    ) -> Decimal:
        if body is None:
            body = json.dumps(payload).encode()  # once, not per candidate
        worst = ZERO
        for route in routes:
            found = self._checked(project, route, payload, body)
            worst = max(worst, self._cost(route, found, now))
        return worst

    @staticmethod
    def _bound(route: Any, payload: dict[str, Any], body: bytes | None = None) -> Bound:
        return bound(payload, route.provider.kind, route.model, body)

    def _warned(self, hold: Hold | None) -> Hold | None:
        """A soft budget's first warning of the day goes to the log (the header, every time)."""
        if hold is not None and hold.warning and self.book.first_warning(hold):
            log.warning("%s", hold.warning)
        return hold

    def estimate(self, route: Any, payload: dict[str, Any], now: datetime) -> Decimal:
        """The most this request can cost on ``route`` (see :mod:`tollhouse.budgets.bound`)."""
        return self._cost(route, self._bound(route, payload), now)

    def _cost(self, route: Any, found: Bound, now: datetime) -> Decimal:
        provider = route.provider
        try:
            context = self.pricer.context_window(provider.price_provider, route.model)
            context = context or UNKNOWN_CONTEXT
            tokens = context if found.input_tokens is None else min(found.input_tokens, context)
            out = found.output_tokens
            ways = [Usage(input_tokens=tokens, output_tokens=out)]
            if found.cache_writes:  # all of it may be written to the (dearer) 1-hour cache
                ways.append(
                    Usage(
                        input_tokens=tokens,
                        cache_write_tokens=tokens,
                        cache_write_1h_tokens=tokens,
                        output_tokens=out,
                    )
                )
            return max(self._price(route, usage, now) for usage in ways)
        except Exception:  # an estimate must never fail a request
            log.exception("budget estimate failed for %s/%s", provider.name, route.model)
            return ZERO

    def _price(self, route: Any, usage: Usage, now: datetime) -> Decimal:
        provider = route.provider
        query = PriceQuery(provider.name, provider.price_provider, (route.model,), usage, None, now)
        return self.pricer.cost(query).usd or ZERO

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
                try:
                    spent, reserved = self.shared.spent_and_reserved(project, now)
                except BudgetStoreUnavailable:  # an outage: no numbers beat wrong ones
                    return []
                for period, amount in spent.items():
                    book.seed(project, period, amount)
                    book.reserve_seed(project, period, reserved[period])
            return book.status(now)
        return self.book.status(self.clock())
