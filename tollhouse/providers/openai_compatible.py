"""OpenAI-compatible servers (vLLM, Ollama, llama.cpp server): local, unpriced by default.

A local model has no list price; give it one (often 0) under ``[prices]``.
"""

from __future__ import annotations

from tollhouse.providers.base import Provider


class OpenAICompatibleProvider(Provider):
    kind = "openai-compatible"
    default_name = "local"
    default_base_url = "http://127.0.0.1:11434/v1"
    default_key_env = ""
    slashed_models = True  # "vendor/model" names are its own
    dialects = frozenset({"openai-chat", "openai-responses"})
    pricing_id = None
    base_includes = "/v1"

    def auth_headers(self, key: str) -> dict[str, str]:
        # Local servers often need no key at all.
        return {"Authorization": f"Bearer {key}"} if key else {}
