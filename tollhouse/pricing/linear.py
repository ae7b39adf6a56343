"""genai-prices' own rates, applied in microseconds instead of ~80 µs a call.

``ModelPrice.calc_price`` decomposes usage through a unit registry on every
call: exact, general, and slow enough to matter at a few thousand calls a
second (measured in ``tests/pricing/test_linear.py``'s docstring). For the
token counts a gateway sees, price is linear in each count within a tier
bracket: tiers switch on total input tokens (``input > tier.start``) and then
apply one rate to all tokens. So we ask genai-prices itself for the five
per-token rates of each (price, bracket) once, and multiply. Nothing here
knows a price; every rate comes from the library, and a test holds this
against ``calc_price`` over every model of the providers we price.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal

import genai_prices
from genai_prices.types import ModelPrice, TieredPrices

from tollhouse.metering.usage import Usage


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token in one tier bracket."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    output: Decimal

    def cost(self, u: Usage) -> Decimal:
        uncached = u.input_tokens - u.cached_input_tokens - u.cache_write_tokens
        write_5m = u.cache_write_tokens - u.cache_write_1h_tokens
        return (
            self.input * uncached
            + self.cache_read * u.cached_input_tokens
            + self.cache_write * write_5m
            + self.cache_write_1h * u.cache_write_1h_tokens
            + self.output * u.output_tokens
        )


class LinearPrice:
    """One ModelPrice, with rates derived per tier bracket on first use."""

    def __init__(self, price: ModelPrice) -> None:
        self.price = price
        starts: set[int] = set()
        for value in price.__dict__.values():
            if isinstance(value, TieredPrices):
                starts.update(t.start for t in value.tiers)
        self.starts = sorted(starts)
        self._rates: dict[int, Rates] = {}

    def cost(self, usage: Usage) -> Decimal:
        uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
        if (
            uncached < 0
            or usage.input_tokens <= 0
            or usage.cache_write_1h_tokens > usage.cache_write_tokens
        ):
            return library_cost(self.price, usage)  # degenerate shapes: let the library decide
        bracket = bisect_left(self.starts, usage.input_tokens)  # starts strictly below input
        rates = self._rates.get(bracket)
        if rates is None:
            level = 1 if bracket == 0 else self.starts[bracket - 1] + 1
            if bracket == 0 and self.starts and self.starts[0] < 1:
                return library_cost(self.price, usage)
            rates = self._rates[bracket] = derive_rates(self.price, level)
        return rates.cost(usage)


def derive_rates(price: ModelPrice, level: int) -> Rates:
    """Per-token rates at total input ``level``, each read back from genai-prices."""

    def at(
        input_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        output_tokens: int = 0,
    ) -> Decimal:
        usage = Usage(
            input_tokens=input_tokens,
            cached_input_tokens=cached_input_tokens,
            cache_write_tokens=cache_write_tokens,
            cache_write_1h_tokens=cache_write_1h_tokens,
            output_tokens=output_tokens,
        )
        return library_cost(price, usage)

    n = Decimal(level)
    base = at(input_tokens=level)
    return Rates(
        input=base / n,
        cache_read=at(input_tokens=level, cached_input_tokens=level) / n,
        cache_write=at(input_tokens=level, cache_write_tokens=level) / n,
        cache_write_1h=at(input_tokens=level, cache_write_tokens=level, cache_write_1h_tokens=level)
        / n,
        output=(at(input_tokens=level, output_tokens=level) - base) / n,
    )


def library_cost(price: ModelPrice, usage: Usage) -> Decimal:
    result = price.calc_price(library_usage(usage))
    return Decimal(result["total_price"])


def library_usage(usage: Usage) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        output_tokens=usage.output_tokens,
    )
