"""The sans-io budget book: what each project spent and has reserved, per UTC day and month.

A request reserves its worst-case cost before it is sent and settles with
its real cost afterwards, so requests in flight count against the budget:
a hard budget that allows ten calls lets ten through however many arrive at
once. The caller passes the time in; the book does no I/O.

>>> book = BudgetBook({"acme": Budget(daily=Decimal("10"), monthly=None, hard=True)})
>>> hold = book.reserve("acme", Decimal("1"), now)     # BudgetExceeded when over
>>> book.settle(hold, Decimal("0.42"))
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollhouse.errors import BudgetExceeded

BUDGET_MODES = ("soft", "hard")  # soft: a warning header; hard: refused past the limit
HARD = "hard"

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Budget:
    daily: Decimal | None
    monthly: Decimal | None
    hard: bool


@dataclass(slots=True)
class Hold:
    """One request's reservation; ``warning`` is set when a soft budget is overspent."""

    project: str
    amount: Decimal
    day: str
    month: str
    warning: str | None = None
    settled: bool = False
    ref: str = ""  # its row in budget_holds, when budgets are shared (shared.py)


def periods(now: datetime) -> tuple[str, str]:
    """The UTC day and month ``now`` falls in: ('2026-12-01', '2026-12')."""
    day = now.date().isoformat()
    return day, day[:7]


class BudgetBook:
    """Spent and reserved amounts per (project, period); checks and settles holds."""

    def __init__(self, budgets: dict[str, Budget]) -> None:
        self.budgets = budgets
        self._spent: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self._reserved: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self._warned: set[tuple[str, str]] = set()

    def seed(self, project: str, period: str, spent: Decimal) -> None:
        """What the ledger says ``project`` spent in ``period`` before this process started."""
        self._spent[(project, period)] = spent

    def reserve_seed(self, project: str, period: str, reserved: Decimal) -> None:
        """What requests in flight (anywhere) hold in ``period``: for a status snapshot."""
        self._reserved[(project, period)] = reserved

    def reserve(self, project: str, amount: Decimal, now: datetime) -> Hold | None:
        """Reserve ``amount`` for a request of ``project``; None when it has no budget.

        Raises :class:`BudgetExceeded` when a hard budget can't cover it.
        """
        budget = self.budgets.get(project)
        if budget is None:
            return None
        day, month = periods(now)
        hold = Hold(project, amount, day, month)
        over = self._over(project, budget, hold)
        if over is not None:
            if budget.hard:
                raise BudgetExceeded(over)
            hold.warning = over
        self._reserved[(project, day)] += amount
        self._reserved[(project, month)] += amount
        return hold

    def settle(self, hold: Hold, cost: Decimal | None) -> None:
        """Replace the reservation with the real cost (None: unpriced, counts as 0)."""
        if hold.settled:
            return
        hold.settled = True
        for period in (hold.day, hold.month):
            self._reserved[(hold.project, period)] -= hold.amount
            self._spent[(hold.project, period)] += cost or ZERO

    def first_warning(self, hold: Hold) -> bool:
        """True once per project and day: the log line; the header comes every time."""
        key = (hold.project, hold.day)
        if key in self._warned:
            return False
        self._warned.add(key)
        return True

    def _over(self, project: str, budget: Budget, hold: Hold) -> str | None:
        spent = {p: self._spent[(project, p)] for p in (hold.day, hold.month)}
        reserved = {p: self._reserved[(project, p)] for p in (hold.day, hold.month)}
        return over_budget(budget, hold, spent, reserved)

    def status(self, now: datetime) -> list[dict[str, Any]]:
        """Per budgeted project and period: limit, spent, reserved, share used, over."""
        day, month = periods(now)
        out = []
        for project, budget in sorted(self.budgets.items()):
            for label, limit, period in (
                ("daily", budget.daily, day),
                ("monthly", budget.monthly, month),
            ):
                if limit is None:
                    continue
                spent = self._spent[(project, period)]
                reserved = self._reserved[(project, period)]
                out.append(
                    {
                        "project": project,
                        "period": label,
                        "window": period,
                        "mode": "hard" if budget.hard else "soft",
                        "limit_usd": format(limit, "f"),
                        "spent_usd": format(spent, "f"),
                        "reserved_usd": format(reserved, "f"),
                        "used_share": float(spent / limit) if limit else 1.0,
                        "over": spent >= limit,
                    }
                )
        return out


def over_budget(
    budget: Budget, hold: Hold, spent: dict[str, Decimal], reserved: dict[str, Decimal]
) -> str | None:
    """Why ``hold`` doesn't fit (spent and reserved by period), or None when it does."""
    for label, limit, period, key in (
        ("daily", budget.daily, hold.day, "budget_daily_usd"),
        ("monthly", budget.monthly, hold.month, "budget_monthly_usd"),
    ):
        if limit is None:
            continue
        s, r = spent.get(period, ZERO), reserved.get(period, ZERO)
        if s + r >= limit or s + r + hold.amount > limit:
            return _message(hold.project, label, limit, s, r, hold, key, budget.hard)
    return None


def _message(
    project: str,
    label: str,
    limit: Decimal,
    spent: Decimal,
    reserved: Decimal,
    hold: Hold,
    key: str,
    hard: bool,
) -> str:
    resets = "00:00 UTC" if label == "daily" else "the 1st of next month (UTC)"
    state = (
        f"{_usd(spent)} spent, {_usd(reserved)} reserved by requests in flight, "
        f"this request up to {_usd(hold.amount)}"
    )
    if not hard:
        if spent >= limit:
            return f"project {project!r} is over its soft {label} budget of {_usd(limit)} ({state})"
        return (  # nothing over yet: say what is true, the worst case would cross it
            f"this request could take project {project!r} over its soft {label} budget of "
            f"{_usd(limit)}: its worst case is {_usd(hold.amount)}, with {_usd(spent)} spent "
            f"and {_usd(reserved)} reserved by requests in flight"
        )
    used = spent + reserved >= limit
    verdict = "has used its" if used else f"has {_usd(limit - spent - reserved)} left of its"
    return (
        f"project {project!r} {verdict} hard {label} budget of {_usd(limit)} ({state}); "
        f"raise projects.{project}.{key} in the tollhouse config, or wait until {resets}"
    )


def _usd(d: Decimal) -> str:
    return f"{d:.4f} USD" if d < 1 else f"{d:,.2f} USD"
