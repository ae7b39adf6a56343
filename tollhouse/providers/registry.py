"""Provider kinds by name: the one table of upstream adapters.

Explicit and read-only, like :mod:`tollhouse.metering.registry`: adding a
kind is a module in this package and a line here (ARCHITECTURE.md); the
config's ``kind`` choices and the embedded defaults follow from it.

>>> list(KINDS)
['openai', 'anthropic', 'gemini', 'xai', 'openrouter', 'openai-compatible']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from tollhouse.providers.anthropic import AnthropicProvider
from tollhouse.providers.base import Provider
from tollhouse.providers.gemini import GeminiProvider
from tollhouse.providers.openai import OpenAIProvider
from tollhouse.providers.openai_compatible import OpenAICompatibleProvider
from tollhouse.providers.openrouter import OpenRouterProvider
from tollhouse.providers.xai import XAIProvider

if TYPE_CHECKING:
    from tollhouse.settings import ProviderSettings


def build(kinds: Iterable[type[Provider]]) -> Mapping[str, type[Provider]]:
    """A registry of ``kinds`` (tests build one with a new kind added)."""
    return MappingProxyType({cls.kind: cls for cls in kinds})


KINDS: Mapping[str, type[Provider]] = build(
    (
        OpenAIProvider,
        AnthropicProvider,
        GeminiProvider,
        XAIProvider,
        OpenRouterProvider,
        OpenAICompatibleProvider,
    )
)


def build_providers(
    settings: Iterable[ProviderSettings], kinds: Mapping[str, type[Provider]] = KINDS
) -> list[Provider]:
    """Instantiate the adapter of each configured provider, in config order."""
    return [kinds[p.kind](p) for p in settings]
