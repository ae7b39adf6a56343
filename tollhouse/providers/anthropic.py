"""Anthropic Messages: ``x-api-key`` auth; the base URL is the host root."""

from __future__ import annotations

from tollhouse.providers.base import Provider


class AnthropicProvider(Provider):
    kind = "anthropic"
    default_base_url = "https://api.anthropic.com"
    default_key_env = "ANTHROPIC_API_KEY"
    dialects = frozenset({"anthropic"})
    pricing_id = "anthropic"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def dialect_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "anthropic-version": "2023-06-01"}
