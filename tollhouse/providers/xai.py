"""xAI: OpenAI-shaped, and its usage reports the billed cost in ticks."""

from __future__ import annotations

from decimal import Decimal

from tollhouse.metering.usage import Usage
from tollhouse.providers.base import Provider, decimal_of

TICKS_PER_USD = Decimal(10) ** 10


class XAIProvider(Provider):
    kind = "xai"
    default_base_url = "https://api.x.ai/v1"
    default_key_env = "XAI_API_KEY"
    dialects = frozenset({"openai-chat", "openai-responses"})
    pricing_id = "x-ai"
    base_includes = "/v1"

    def reported_cost(self, usage: Usage) -> Decimal | None:
        ticks = decimal_of(usage.raw.get("cost_in_usd_ticks"))
        return None if ticks is None else ticks / TICKS_PER_USD
