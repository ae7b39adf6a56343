"""Which hosts are LLM providers: only these are decrypted and metered.

Every other host is tunneled byte for byte, its own certificate and all.
A host maps to a provider kind (for pricing and provider-reported cost);
the path of each request then says which wire dialect it speaks.

>>> table = HostTable.with_extras({"llm.corp.example": "openai"})
>>> table.kind_of("api.anthropic.com"), table.kind_of("eu-aiplatform.googleapis.com")
('anthropic', 'gemini')
>>> table.kind_of("pypi.org") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: Built-in hosts, each with the provider kind that prices its calls.
KNOWN_HOSTS: Mapping[str, str] = MappingProxyType(
    {
        "api.openai.com": "openai",
        "api.anthropic.com": "anthropic",
        "generativelanguage.googleapis.com": "gemini",
        "aiplatform.googleapis.com": "gemini",  # Vertex AI (global endpoint)
        "api.x.ai": "xai",
        "openrouter.ai": "openrouter",
        "chatgpt.com": "openai",  # ChatGPT / Codex CLI with a ChatGPT login (backend-api)
        "cloudcode-pa.googleapis.com": "gemini",  # Gemini Code Assist / Gemini CLI login
    }
)
# Vertex AI's regional endpoints: us-central1-aiplatform.googleapis.com, ...
REGIONAL_SUFFIXES: Mapping[str, str] = MappingProxyType({"-aiplatform.googleapis.com": "gemini"})


@dataclass(frozen=True, slots=True)
class HostTable:
    """Host name → provider kind, built-ins plus the config's ``[intercept] hosts``."""

    hosts: Mapping[str, str]

    @classmethod
    def with_extras(cls, extras: Mapping[str, str]) -> HostTable:
        merged = dict(KNOWN_HOSTS)
        merged.update({host.lower().rstrip("."): kind for host, kind in extras.items()})
        return cls(MappingProxyType(merged))

    def kind_of(self, host: str | None) -> str | None:
        """The provider kind of ``host``, or None: not an LLM host, tunnel it untouched."""
        if not host:
            return None
        name = host.lower().rstrip(".")
        kind = self.hosts.get(name)
        if kind is not None:
            return kind
        for suffix, regional in REGIONAL_SUFFIXES.items():
            if name.endswith(suffix) and name != suffix.lstrip("-"):
                return regional
        return None
