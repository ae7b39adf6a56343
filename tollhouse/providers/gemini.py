"""Google Gemini (Generative Language API): ``x-goog-api-key`` auth."""

from __future__ import annotations

from tollhouse.providers.base import Provider, register


@register("gemini")
class GeminiProvider(Provider):
    dialects = frozenset({"gemini"})
    pricing_id = "google"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}
