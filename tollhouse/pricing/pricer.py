"""Exact cost of one call: overrides, then the provider's own bill, then genai-prices.

Precedence (first that applies wins, and the ledger records which):

1. ``override``: a ``[prices."provider/model"]`` entry (contracted rates,
   local models set to 0). The user said so explicitly.
2. ``provider``: a cost the provider reported with the response (xAI
   ``cost_in_usd_ticks``, OpenRouter ``usage.cost``): what was billed.
3. ``genai-prices``: list price at the time of the request, tiers included
   (rates read from the library once per price and tier bracket: see
   :mod:`tollhouse.pricing.linear`).
4. ``unpriced``: cost None (never a silent $0), warned about once per model.

Pure: no I/O but one log line per unpriced model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from genai_prices.data_snapshot import get_snapshot as _SNAPSHOT
from genai_prices.types import ModelInfo, ModelPrice

from tollhouse.metering.usage import Usage
from tollhouse.pricing.discount import Discount
from tollhouse.pricing.linear import LinearPrice
from tollhouse.settings import Price

log = logging.getLogger("tollhouse.pricing")


@dataclass(frozen=True, slots=True)
class Cost:
    usd: Decimal | None
    # "override" | "provider" | "genai-prices" | "unpriced"; "+discount" when a deal applied
    source: str


@dataclass(frozen=True, slots=True)
class PriceQuery:
    """Everything the price of one call depends on."""

    provider_name: str
    pricing_provider: str | None
    models: tuple[str, ...]  # served model first, then the requested one
    usage: Usage
    reported: Decimal | None
    when: datetime


class Pricer:
    """Prices calls. Holds the config's overrides and who was warned already."""

    def __init__(
        self, overrides: dict[str, Price], discounts: dict[str, Discount] | None = None
    ) -> None:
        self.overrides = {name: LinearPrice(_model_price(p)) for name, p in overrides.items()}
        self.discounts = discounts or {}
        self._warned: set[tuple[str, str]] = set()
        self._models: dict[tuple[str, str], ModelInfo | None] = {}
        self._linear: dict[int, LinearPrice] = {}

    def cost(self, q: PriceQuery) -> Cost:
        override = self._override(q)
        if override is not None:
            return Cost(override.cost(q.usage), "override")
        if q.reported is not None:
            return self._discounted(q, q.reported, "provider")
        listed = self._list_price(q)
        if listed is not None:
            return self._discounted(q, listed, "genai-prices")
        self._warn_unpriced(q)
        return Cost(None, "unpriced")

    def _discounted(self, q: PriceQuery, usd: Decimal, source: str) -> Cost:
        deal = self.discounts.get(q.provider_name)
        if deal is None or not deal.applies(q.when):
            return Cost(usd, source)
        return Cost(deal.apply(usd, q.when), source + "+discount")

    def _override(self, q: PriceQuery) -> LinearPrice | None:
        for model in q.models:
            found = self.overrides.get(f"{q.provider_name}/{model}") or self.overrides.get(model)
            if found is not None:
                return found
        return None

    def _list_price(self, q: PriceQuery) -> Decimal | None:
        if q.pricing_provider is None:
            return None
        for model in q.models:
            info = self._model(q.pricing_provider, model)
            if info is not None:
                return self._linear_for(info.get_prices(q.when)).cost(q.usage)
        return None

    def context_window(self, pricing_provider: str | None, model: str) -> int | None:
        """The model's context window in tokens, as genai-prices knows it (None: unknown)."""
        info = self._model(pricing_provider, model) if pricing_provider else None
        return info.context_window if info is not None else None

    def _model(self, provider: str, model: str) -> ModelInfo | None:
        key = (provider, model)
        if key not in self._models:
            try:
                self._models[key] = _SNAPSHOT().find_provider_model(model, None, provider, None)[1]
            except LookupError:
                self._models[key] = None
        return self._models[key]

    def _linear_for(self, price: ModelPrice) -> LinearPrice:
        # Keyed by identity: the snapshot's ModelPrice objects live as long as we do,
        # and the LinearPrice holds a reference, so the id can't be reused.
        found = self._linear.get(id(price))
        if found is None:
            found = self._linear[id(price)] = LinearPrice(price)
        return found

    def _warn_unpriced(self, q: PriceQuery) -> None:
        key = (q.provider_name, q.models[0] if q.models else "")
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning(
            "no price known for %s/%s: its calls are recorded as unpriced; "
            'add [prices."%s/%s"] to the config to price them',
            *key,
            *key,
        )


def _model_price(p: Price) -> ModelPrice:
    cache_write = p.cache_write if p.cache_write is not None else p.input
    return ModelPrice(
        input_mtok=p.input,
        output_mtok=p.output,
        cache_read_mtok=p.cached_input if p.cached_input is not None else p.input,
        cache_write_mtok=cache_write,
        cache_write_1h_mtok=p.cache_write_1h if p.cache_write_1h is not None else cache_write,
    )
