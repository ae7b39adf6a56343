"""OpenAI: Chat Completions and Responses, bearer keys."""

from __future__ import annotations

from tollhouse.providers.base import Provider, register


@register("openai")
class OpenAIProvider(Provider):
    dialects = frozenset({"openai-chat", "openai-responses"})
    pricing_id = "openai"
    base_includes = "/v1"
