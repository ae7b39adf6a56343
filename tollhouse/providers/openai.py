"""OpenAI: Chat Completions and Responses, bearer keys."""

from __future__ import annotations

from tollhouse.providers.base import Provider


class OpenAIProvider(Provider):
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_key_env = "OPENAI_API_KEY"
    dialects = frozenset({"openai-chat", "openai-responses"})
    pricing_id = "openai"
    base_includes = "/v1"
