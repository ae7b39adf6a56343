"""Provider flavors: the URL prefix, price list and cost reporting of each.

``openai``, ``xai``, ``openrouter`` and ``compat`` speak the OpenAI dialects;
``anthropic`` and ``gemini`` their own. xAI bills in ticks of 1e-10 USD and
reports ``usage.cost_in_usd_ticks``; OpenRouter reports ``usage.cost`` in
USD; ``compat`` is a local model with no price.

>>> FLAVORS["xai"].usage_fields(Decimal("0.0000012345"))
{'cost_in_usd_ticks': 12345}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .billing import Tally, list_price


@dataclass(frozen=True, slots=True)
class Flavor:
    """One provider personality: its price list, billing quantum and cost field."""

    name: str
    provider_id: str | None
    dialects: tuple[str, ...]
    models: tuple[str, ...]
    tick: Decimal | None = None
    """Smallest billable amount (xAI bills in 1e-10 USD ticks)."""
    cost_fields: Callable[[Decimal], dict[str, Any]] | None = None
    """Extra ``usage`` fields reporting the billed cost to the client."""
    catalog: str = "openai"
    """Shape of the model list: openai, anthropic or gemini."""

    def cost(self, tally: Tally, model: str, when: datetime) -> Decimal | None:
        if self.provider_id is None:
            return None
        price = list_price(tally, model, self.provider_id, when)
        if price is None or self.tick is None:
            return price
        return price.quantize(self.tick, rounding=ROUND_HALF_EVEN)

    def usage_fields(self, cost: Decimal | None) -> dict[str, Any]:
        if cost is None or self.cost_fields is None:
            return {}
        return self.cost_fields(cost)


XAI_TICK = Decimal("1e-10")


def _xai_fields(cost: Decimal) -> dict[str, Any]:
    return {"cost_in_usd_ticks": int(cost.scaleb(10).to_integral_value(ROUND_HALF_EVEN))}


def _openrouter_fields(cost: Decimal) -> dict[str, Any]:
    return {"cost": cost, "is_byok": False, "cost_details": {"upstream_inference_cost": None}}


_OPENAI_DIALECTS = ("openai-chat", "openai-responses")
FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("openai", "openai", _OPENAI_DIALECTS, ("gpt-4o-mini", "gpt-4.1", "gpt-5", "o3")),
        Flavor("xai", "x-ai", _OPENAI_DIALECTS, ("grok-4", "grok-3-mini"), XAI_TICK, _xai_fields),
        Flavor(
            "openrouter",
            "openrouter",
            _OPENAI_DIALECTS,
            ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4"),
            cost_fields=_openrouter_fields,
        ),
        Flavor("compat", None, _OPENAI_DIALECTS, ("local-model",)),
        Flavor(
            "anthropic",
            "anthropic",
            ("anthropic",),
            ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6"),
            catalog="anthropic",
        ),
        Flavor(
            "gemini",
            "google",
            ("gemini",),
            ("gemini-2.5-flash", "gemini-2.5-pro"),
            catalog="gemini",
        ),
    )
}
