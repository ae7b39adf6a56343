"""Model resolution: which configured provider serves a model name.

``provider/model`` picks the provider named before the slash (when it is a
configured provider); any other name goes to the first configured provider
that speaks the client's dialect.

>>> router.resolve("openai/gpt-4o", "openai-chat")
Route(provider=<OpenAIProvider openai ...>, model='gpt-4o')
"""

from __future__ import annotations

from dataclasses import dataclass

from tollhouse.errors import UnknownModel
from tollhouse.ingress import DIALECTS
from tollhouse.providers import Provider


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    model: str


class Router:
    def __init__(self, providers: list[Provider]) -> None:
        self.by_name = {p.name: p for p in providers}
        self.default: dict[str, Provider] = {}
        for provider in providers:
            for dialect in provider.dialects:
                self.default.setdefault(dialect, provider)

    def resolve(self, model: str, dialect: str) -> Route:
        prefix, slash, rest = model.partition("/")
        named = self.by_name.get(prefix) if slash and rest else None
        if named is not None:
            if dialect not in named.dialects:
                raise UnknownModel(_wrong_dialect(model, named, dialect))
            return Route(named, rest)
        provider = self.default.get(dialect)
        if provider is None:
            raise UnknownModel(
                f"model {model!r}: no configured provider speaks {DIALECTS[dialect].label}; "
                "add one under [[providers]] in the config"
            )
        return Route(provider, model)

    def for_dialect(self, dialect: str) -> Provider | None:
        return self.default.get(dialect)


def _wrong_dialect(model: str, provider: Provider, dialect: str) -> str:
    spoken = ", ".join(sorted(DIALECTS[d].label for d in provider.dialects))
    return (
        f"model {model!r}: provider {provider.name!r} speaks {spoken}, "
        f"not {DIALECTS[dialect].label}; call its own endpoint, or prefix the model "
        "with a provider that serves it in this dialect (e.g. 'openrouter/...')"
    )
