"""OpenRouter: OpenAI-shaped, and its usage reports the billed cost in USD."""

from __future__ import annotations

from decimal import Decimal

from tollhouse.metering.usage import Usage
from tollhouse.providers.base import Provider, decimal_of


class OpenRouterProvider(Provider):
    kind = "openrouter"
    default_base_url = "https://openrouter.ai/api/v1"
    default_key_env = "OPENROUTER_API_KEY"
    slashed_models = True  # "vendor/model" names are its own
    dialects = frozenset({"openai-chat", "openai-responses"})
    pricing_id = "openrouter"
    base_includes = "/v1"

    def reported_cost(self, usage: Usage) -> Decimal | None:
        return decimal_of(usage.raw.get("cost"))
