"""Spend against a provider commitment, and the run-rate that says where it is heading.

>>> commitment_status(conn, settings.commitments, now)
[{'provider': 'openai', 'annual_usd': '120000', 'spent_usd': '8210.55', 'run_rate_usd': ...}]
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tollhouse.settings import CommitmentSettings


def contract_year(start: date, today: date) -> tuple[date, date]:
    """The contract year ``today`` falls in: [first day, first day of the next year)."""
    years = max(0, today.year - start.year)
    begin = _add_years(start, years)
    if begin > today:
        begin = _add_years(start, years - 1) if years else start
    return begin, _add_years(begin, 1)


def _add_years(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:  # 29 February
        return d.replace(year=d.year + n, day=28)


def commitment_status(
    conn: sqlite3.Connection, commitments: dict[str, CommitmentSettings], now: datetime
) -> list[dict[str, Any]]:
    """Per provider with a deal: the contract year, spend in it, run-rate, shortfall."""
    out = []
    today = now.astimezone(UTC).date()
    for provider, deal in sorted(commitments.items()):
        item: dict[str, Any] = {"provider": provider, "discount": format(deal.discount, "f")}
        if deal.annual_usd is None or not deal.start:
            out.append(item)
            continue
        begin, end = contract_year(date.fromisoformat(deal.start), today)
        spent = _spent(conn, provider, begin, min(end, today + timedelta(days=1)))
        elapsed = max(1, (min(today, end) - begin).days + 1)
        length = (end - begin).days
        run_rate = spent / elapsed * length
        item.update(
            annual_usd=format(deal.annual_usd, "f"),
            year_start=begin.isoformat(),
            year_end=(end - timedelta(days=1)).isoformat(),
            spent_usd=format(spent, "f"),
            used_share=float(spent / deal.annual_usd) if deal.annual_usd else None,
            days_elapsed=elapsed,
            run_rate_usd=format(run_rate.quantize(Decimal("0.01")), "f"),
            projected_shortfall_usd=format(
                max(Decimal(0), deal.annual_usd - run_rate).quantize(Decimal("0.01")), "f"
            ),
        )
        out.append(item)
    return out


def _spent(conn: sqlite3.Connection, provider: str, begin: date, end: date) -> Decimal:
    rows = conn.execute(
        "SELECT cost_usd FROM requests WHERE provider = ? AND ts >= ? AND ts < ? "
        "AND cost_usd IS NOT NULL",
        (provider, begin.isoformat(), end.isoformat()),
    )
    return sum((Decimal(c) for (c,) in rows), Decimal(0))
