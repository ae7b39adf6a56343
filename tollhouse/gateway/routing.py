"""Model resolution: which configured provider(s) serve a model name.

``provider/model`` picks the provider named before the slash (when it is a
configured provider); an alias from ``[models.NAME]`` expands to its chain,
primary first; any other name goes to the first configured provider that
speaks the client's dialect. A model a provider serves only through the
Responses API (its ``responses_models``) is spoken to in that dialect,
whatever the client's (the call is translated).

>>> [r.model for r in router.candidates("smart", "openai-chat")]
['claude-opus-4-8', 'gpt-5.5', 'llama-4']
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from tollhouse.errors import UnknownModel
from tollhouse.fusion.plan import FusionPlan, Panel, chosen_panel
from tollhouse.gateway.models import Route
from tollhouse.ingress import DIALECTS
from tollhouse.ingress.registry import NATIVE
from tollhouse.providers import Provider

__all__ = ["Route", "Router"]


class Router:
    def __init__(
        self,
        providers: list[Provider],
        aliases: Mapping[str, tuple[str, ...]],
        panels: Mapping[str, Panel] | None = None,
    ) -> None:
        self.by_name = {p.name: p for p in providers}
        self.aliases = dict(aliases)
        self.panels = dict(panels or {})
        self.default: dict[str, Provider] = {}
        for provider in providers:
            for dialect in provider.dialects:
                self.default.setdefault(dialect, provider)

    def candidates(self, model: str, dialect: str) -> list[Route]:
        """The routes to try for ``model``, in order; one unless it is an alias."""
        chain = self.aliases.get(model)
        routes = (
            [self.resolve(model, dialect)]
            if chain is None
            else [self._chain_entry(entry, dialect) for entry in chain]
        )
        for route in routes:  # before anything is sent: a model never shapes the URL
            route.provider.check_model(route.model)
        return routes

    def is_alias(self, model: str) -> bool:
        return model in self.aliases

    def panel(self, model: str, payload: Mapping[str, Any], dialect: str) -> FusionPlan | None:
        """A fused model's routes (tollhouse.fusion), or None for any other model.

        Each panel member, the judge and the writer is resolved like a chain entry
        (translated when its provider speaks another dialect; an alias is its chain).
        The judge is asked in OpenAI chat; the writer in the client's dialect.
        """
        found = chosen_panel(model, payload, self.panels)
        if found is None:
            return None
        plan = FusionPlan(
            model,
            found.members,
            tuple(self._fused_entry(m, dialect) for m in found.members),
            self._fused_entry(found.judge, "openai-chat"),
            self._fused_entry(found.author, dialect),
            found.member_timeout_s,
        )
        for routes in plan.all_routes():
            for route in routes:
                route.provider.check_model(route.model)
        return plan

    def _fused_entry(self, name: str, dialect: str) -> list[Route]:
        chain = self.aliases.get(name)
        return [self._chain_entry(entry, dialect) for entry in (chain or (name,))]

    def resolve(self, model: str, dialect: str) -> Route:
        prefix, slash, rest = model.partition("/")
        named = self.by_name.get(prefix) if slash and rest else None
        if named is not None:
            spoken = named.spoken_dialect(rest, dialect, ())
            if spoken is None:
                raise UnknownModel(_wrong_dialect(model, named, dialect))
            return Route(named, rest, spoken)
        provider = self.default.get(dialect)
        if provider is None:
            raise UnknownModel(
                f"model {model!r}: no configured provider speaks {DIALECTS[dialect].label}; "
                "add one under [[providers]] in the config"
            )
        if slash and not provider.slashed_models:
            self._check_prefix(model, prefix, provider)
        return Route(provider, model, provider.spoken_dialect(model, dialect, ()) or dialect)

    def _check_prefix(self, model: str, prefix: str, provider: Provider) -> None:
        """``opneai/gpt-4o``: a prefix a letter or two off a provider's name is a typo,
        when the default provider's own names never hold a slash (else it's theirs)."""
        near = difflib.get_close_matches(prefix, self.by_name, n=1, cutoff=0.75)
        if near:
            fixed = f"{near[0]}/{model.partition('/')[2]}"
            raise UnknownModel(
                f"model {model!r}: no provider is called {prefix!r}; did you mean {fixed!r}? "
                f"(configured providers: {', '.join(self.by_name)})"
            )

    def _chain_entry(self, entry: str, dialect: str) -> Route:
        prefix, slash, rest = entry.partition("/")
        named = self.by_name.get(prefix) if slash and rest else None
        if named is None:
            return self.resolve(entry, dialect)
        return Route(named, rest, named.spoken_dialect(rest, dialect, NATIVE) or dialect)

    def for_dialect(self, dialect: str) -> Provider | None:
        return self.default.get(dialect)


def _wrong_dialect(model: str, provider: Provider, dialect: str) -> str:
    spoken = ", ".join(sorted(DIALECTS[d].label for d in provider.dialects))
    return (
        f"model {model!r}: provider {provider.name!r} speaks {spoken}, "
        f"not {DIALECTS[dialect].label}; call its own endpoint, prefix the model with a "
        "provider that serves it in this dialect (e.g. 'openrouter/...'), or put it in a "
        "[models.NAME] chain to have tollhouse translate"
    )
