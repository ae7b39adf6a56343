"""Cost precedence and exactness, straight against the sans-io Pricer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import genai_prices

from tollhouse.metering.usage import Usage
from tollhouse.pricing import PriceQuery, Pricer
from tollhouse.settings import Price

WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def query(models: tuple[str, ...], usage: Usage, **kw: object) -> PriceQuery:
    base: dict[str, object] = {
        "provider_name": "openai",
        "pricing_provider": "openai",
        "models": models,
        "usage": usage,
        "reported": None,
        "when": WHEN,
    }
    base.update(kw)
    return PriceQuery(**base)  # type: ignore[arg-type]


def test_list_price_matches_genai_prices_exactly() -> None:
    usage = Usage(input_tokens=12_345, cached_input_tokens=2_048, output_tokens=777)
    cost = Pricer({}).cost(query(("gpt-4o",), usage))
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=12_345, cache_read_tokens=2_048, output_tokens=777),
        "gpt-4o",
        provider_id="openai",
        genai_request_timestamp=WHEN,
    ).total_price
    assert (cost.usd, cost.source) == (expected, "genai-prices")
    assert isinstance(cost.usd, Decimal)


def test_anthropic_1h_cache_writes_cost_more_than_5m() -> None:
    pricer = Pricer({})
    q = dict(provider_name="anthropic", pricing_provider="anthropic")
    five = pricer.cost(
        query(
            ("claude-sonnet-4-5",),
            Usage(input_tokens=5000, cache_write_tokens=4000, output_tokens=10),
            **q,
        )
    )
    hour = pricer.cost(
        query(
            ("claude-sonnet-4-5",),
            Usage(
                input_tokens=5000,
                cache_write_tokens=4000,
                cache_write_1h_tokens=4000,
                output_tokens=10,
            ),
            **q,
        )
    )
    assert five.usd is not None and hour.usd is not None and hour.usd > five.usd


def test_served_model_first_then_requested() -> None:
    usage = Usage(input_tokens=100, output_tokens=10)
    cost = Pricer({}).cost(query(("no-such-snapshot-2031", "gpt-4o-mini"), usage))
    assert cost.source == "genai-prices" and cost.usd and cost.usd > 0


def test_override_beats_reported_beats_list() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    overrides = {"openai/gpt-4o": Price(input=Decimal(1), output=Decimal(2))}
    assert Pricer(overrides).cost(query(("gpt-4o",), usage, reported=Decimal("9"))).usd == 3
    reported = Pricer({}).cost(query(("gpt-4o",), usage, reported=Decimal("9")))
    assert (reported.usd, reported.source) == (Decimal(9), "provider")


def test_override_defaults_cache_prices_to_input() -> None:
    usage = Usage(input_tokens=1000, cached_input_tokens=400, cache_write_tokens=100)
    cost = Pricer({"m": Price(input=Decimal(1), output=Decimal(0))}).cost(query(("m",), usage))
    assert cost.usd == Decimal("0.001")


def test_local_model_at_zero_is_priced_not_unpriced() -> None:
    cost = Pricer({"local/llama": Price()}).cost(
        query(("llama",), Usage(input_tokens=5), provider_name="local", pricing_provider=None)
    )
    assert (cost.usd, cost.source) == (Decimal(0), "override")


def test_unknown_model_is_unpriced_and_warned_once(caplog: object) -> None:
    import logging

    pricer = Pricer({})
    logging.getLogger("tollhouse.pricing").setLevel(logging.WARNING)
    results = [pricer.cost(query(("mystery-model",), Usage(input_tokens=5))) for _ in range(3)]
    assert all(r.usd is None and r.source == "unpriced" for r in results)
    warnings = [r for r in caplog.records if "mystery-model" in r.getMessage()]  # type: ignore[attr-defined]
    assert len(warnings) == 1
