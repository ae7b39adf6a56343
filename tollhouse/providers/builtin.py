"""Importing this module registers every built-in provider kind."""

from tollhouse.providers import (  # noqa: F401
    anthropic,
    gemini,
    openai,
    openai_compatible,
    openrouter,
    xai,
)
