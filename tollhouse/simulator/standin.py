"""``tollhouse serve --simulate``: every configured provider pointed at the simulator.

The config is read as usual (its projects, budgets, aliases, limits and trust
settings all apply); only where calls go changes: each provider's base URL
becomes the simulator flavor of its kind, a provider with no key in the
environment gets a stand-in one, and the ledger is a file of its own
(``$TOLLHOUSE_HOME/simulated.db``, its journal beside it) and shared state
stays in-process, so simulated spend and trajectories never mix with real ones.

>>> simulated(settings, "http://127.0.0.1:5555").providers[0].base_url
'http://127.0.0.1:5555/openai/v1'
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from tollhouse.settings import Settings, tollhouse_home

# The simulator's base URL for each provider kind (see tollhouse.simulator).
FLAVOR_PATHS = {
    "openai": "/openai/v1",
    "anthropic": "/anthropic",
    "gemini": "/gemini",
    "xai": "/xai/v1",
    "openrouter": "/openrouter/v1",
    "openai-compatible": "/compat/v1",
}
STAND_IN_KEY = "sk-simulated"  # what the simulator is sent: it takes any key


def simulated_ledger() -> Path:
    return tollhouse_home() / "simulated.db"


def simulated(settings: Settings, url: str) -> Settings:
    """``settings`` with every provider served by the simulator at ``url``."""
    providers = tuple(replace(p, base_url=url + FLAVOR_PATHS[p.kind]) for p in settings.providers)
    ledger = replace(settings.ledger, path=str(simulated_ledger()), url="", journal_dir="")
    state = replace(settings.state, url="")
    return replace(settings, providers=providers, ledger=ledger, state=state)


def stand_in_keys(settings: Settings) -> list[str]:
    """Put a stand-in key in each provider's unset key variable (this process only)."""
    named = []
    for p in settings.providers:
        if p.api_key_env and not os.environ.get(p.api_key_env):
            os.environ[p.api_key_env] = STAND_IN_KEY
            named.append(p.api_key_env)
    return named
