"""Discounts in the pricer, commitment years and run-rate, and the settings that declare them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests.pricing.test_pricer import query
from tollhouse.budgets.commitments import commitment_status, contract_year
from tollhouse.errors import ConfigError
from tollhouse.ledger.store import connect
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Pricer
from tollhouse.pricing.discount import Discount, discounts
from tollhouse.settings import Price, parse_settings

USAGE = Usage(input_tokens=10_000, output_tokens=1_000)


def test_discount_applies_to_list_and_reported_prices_from_its_start() -> None:
    plain = Pricer({}).cost(query(("gpt-4o",), USAGE))
    deal = {"openai": Discount(Decimal("0.15"), date(2026, 1, 1))}
    cut = Pricer({}, deal).cost(query(("gpt-4o",), USAGE))
    assert plain.usd is not None
    assert (cut.usd, cut.source) == (plain.usd * Decimal("0.85"), "genai-prices+discount")
    reported = Pricer({}, deal).cost(query(("gpt-4o",), USAGE, reported=Decimal("2")))
    assert (reported.usd, reported.source) == (Decimal("1.70"), "provider+discount")
    before = Pricer({}, {"openai": Discount(Decimal("0.15"), date(2027, 1, 1))})
    assert before.cost(query(("gpt-4o",), USAGE)) == plain
    other = Pricer({}, deal).cost(
        query(
            ("claude-sonnet-4-5",), USAGE, provider_name="anthropic", pricing_provider="anthropic"
        )
    )
    assert other.source == "genai-prices"


def test_overrides_are_the_contracted_rate_and_not_discounted_again() -> None:
    pricer = Pricer(
        {"openai/gpt-4o": Price(input=Decimal(1), output=Decimal(2))},
        {"openai": Discount(Decimal("0.5"))},
    )
    cost = pricer.cost(query(("gpt-4o",), USAGE))
    assert (cost.usd, cost.source) == (Decimal("0.012"), "override")


def test_contract_years() -> None:
    start = date(2025, 3, 15)
    assert contract_year(start, date(2026, 3, 14)) == (date(2025, 3, 15), date(2026, 3, 15))
    assert contract_year(start, date(2026, 3, 15)) == (date(2026, 3, 15), date(2027, 3, 15))
    assert contract_year(date(2024, 2, 29), date(2025, 3, 1))[0] == date(2025, 2, 28)


def test_spend_against_commitment_and_run_rate(tmp_path: object) -> None:
    from pathlib import Path

    conn = connect(Path(str(tmp_path)) / "l.db")
    for ts, cost in (
        ("2026-01-05T10:00:00", "100"),
        ("2026-01-09T10:00:00", "50.5"),
        ("2025-12-31T10:00:00", "999"),
    ):
        conn.execute(
            "INSERT INTO requests (ts, request_id, project, attribution, dialect, provider, "
            "status, stream, incomplete, cost_usd, price_source, latency_ms) "
            "VALUES (?, ?, 'p', 'header', 'openai-chat', 'openai', 200, 0, 0, ?, 'x', 1)",
            (ts, ts, cost),
        )
    settings = parse_settings(
        {"commitments": {"openai": {"annual_usd": 10000, "discount": 0.1, "start": "2026-01-01"}}}
    )
    now = datetime(2026, 1, 10, 12, tzinfo=UTC)  # day 10 of 365
    [found] = commitment_status(conn, settings.commitments, now)
    assert Decimal(found["spent_usd"]) == Decimal("150.5")
    assert found["run_rate_usd"] == "5493.25"  # 150.5 / 10 * 365
    assert found["projected_shortfall_usd"] == "4506.75"
    assert found["year_end"] == "2026-12-31"
    assert discounts(settings.commitments)["openai"].share == Decimal("0.1")
    assert isinstance(conn, sqlite3.Connection)


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"projects": {"a": {"budget_mode": "strict"}}}, "projects.a.budget_mode"),
        ({"projects": {"a": {"budget_daily_usd": -1}}}, "negative"),
        ({"projects": {"a": {"budget_monthly_usd": "lots"}}}, "budget_monthly_usd"),
        ({"commitments": {"nobody": {"discount": 0.1}}}, "no provider named"),
        ({"commitments": {"openai": {"discount": 1.5}}}, "discount"),
        ({"commitments": {"openai": {"annual_usd": 5}}}, "start"),
        ({"commitments": {"openai": {"start": "soon"}}}, "2026-01-01"),
        ({"dashboard": {"port": "x"}}, "dashboard.port"),
        ({"dashboard": {"port": 70000}}, "dashboard.port"),
    ],
)
def test_settings_errors_name_the_key(data: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    assert names in str(info.value)
