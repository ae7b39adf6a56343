"""Negotiated discounts: a share off what a provider's calls cost, from a start date.

Applied by the :class:`~tollhouse.pricing.Pricer` to list prices and to
provider-reported costs, never to ``[prices]`` overrides (those already are
the contracted rate). The ledger then holds what is actually paid, so
budgets, metrics, the report and the dashboard agree.

>>> Discount(Decimal("0.15"), date(2026, 1, 1)).apply(Decimal("1.00"), when)
Decimal('0.8500')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from tollhouse.settings import CommitmentSettings


@dataclass(frozen=True, slots=True)
class Discount:
    share: Decimal
    start: date | None = None

    def applies(self, when: datetime) -> bool:
        return self.share > 0 and (self.start is None or when.date() >= self.start)

    def apply(self, usd: Decimal, when: datetime) -> Decimal:
        return usd * (1 - self.share) if self.applies(when) else usd


def discounts(commitments: dict[str, CommitmentSettings]) -> dict[str, Discount]:
    """Provider name → its discount, for the deals that have one."""
    return {
        name: Discount(deal.discount, date.fromisoformat(deal.start) if deal.start else None)
        for name, deal in commitments.items()
        if deal.discount > 0
    }
