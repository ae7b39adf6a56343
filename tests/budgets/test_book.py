"""The budget book, driven directly with amounts and times."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tollhouse.budgets.book import Budget, BudgetBook
from tollhouse.errors import BudgetExceeded

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D = Decimal


def hard(daily: str | None = None, monthly: str | None = None) -> BudgetBook:
    return BudgetBook(
        {"acme": Budget(D(daily) if daily else None, D(monthly) if monthly else None, True)}
    )


def test_projects_without_a_budget_get_no_hold() -> None:
    assert hard("1").reserve("other", D("5"), NOW) is None


def test_reservations_in_flight_count_against_a_hard_budget() -> None:
    book = hard("10")
    holds = [book.reserve("acme", D("1"), NOW) for _ in range(10)]
    with pytest.raises(BudgetExceeded) as err:
        book.reserve("acme", D("1"), NOW)
    assert err.value.status == 402
    assert "budget_daily_usd" in err.value.message and "'acme'" in err.value.message
    assert "10.00 USD reserved" in err.value.message
    # Settling below the estimate frees the difference.
    assert holds[0] is not None
    book.settle(holds[0], D("0.25"))
    assert book.reserve("acme", D("0.75"), NOW) is not None
    with pytest.raises(BudgetExceeded):
        book.reserve("acme", D("0.01"), NOW)


def test_settling_twice_counts_once_and_unpriced_counts_zero() -> None:
    book = hard("2")
    hold = book.reserve("acme", D("1"), NOW)
    assert hold is not None
    book.settle(hold, None)
    book.settle(hold, D("5"))
    [status] = book.status(NOW)
    assert (status["spent_usd"], status["reserved_usd"]) == ("0", "0")


def test_seeded_spend_and_the_monthly_limit() -> None:
    book = hard(monthly="100")
    book.seed("acme", "2026-12", D("99.5"))
    with pytest.raises(BudgetExceeded) as err:
        book.reserve("acme", D("1"), NOW)
    assert "monthly" in err.value.message and "budget_monthly_usd" in err.value.message
    # Not used up: the message says what is left rather than that it is spent.
    assert "has 0.5000 USD left of its hard monthly budget" in err.value.message


def test_a_new_day_starts_from_zero() -> None:
    book = hard("1")
    book.seed("acme", "2026-12-01", D("1"))
    with pytest.raises(BudgetExceeded):
        book.reserve("acme", D("0.1"), NOW)
    tomorrow = datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)
    assert book.reserve("acme", D("0.1"), tomorrow) is not None


def test_soft_budgets_warn_and_let_the_request_through() -> None:
    book = BudgetBook({"acme": Budget(D("1"), None, hard=False)})
    first = book.reserve("acme", D("0.6"), NOW)
    second = book.reserve("acme", D("0.6"), NOW)
    assert first is not None and first.warning is None
    assert second is not None and second.warning is not None
    assert "soft daily budget" in second.warning
    assert book.first_warning(second) and not book.first_warning(second)
    assert second is not None
    book.settle(first, D("0.6"))
    book.settle(second, D("0.6"))
    [status] = book.status(NOW)
    assert status["over"] is True and status["mode"] == "soft"
