"""The one interface every upstream kind implements, and the registry of kinds.

A provider adapter knows where its API lives, how it authenticates, which
wire dialects it speaks, which genai-prices provider prices it, and whether
its responses carry their own billed cost. The kinds are listed in one
table, :mod:`tollhouse.providers.registry`:

>>> class MyProvider(Provider):
...     kind = "my-kind"
...     dialects = frozenset({"openai-chat"})
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from tollhouse.errors import BadRequest
from tollhouse.metering.usage import Usage

if TYPE_CHECKING:
    from tollhouse.settings import ProviderSettings

MAX_MODEL = 256
RESPONSES = "openai-responses"  # the dialect ``responses_models`` are served in
# What real model names use, and nothing that means something in a URL or a path:
# gpt-4o-mini, openai/gpt-4o-mini, accounts/fireworks/models/x, llama3.1:8b,
# claude-sonnet-4-5@20250929, ft:gpt-4o-mini:org::id. A character outside the class
# is what :func:`model_error` names.
MODEL_OUTSIDE = re.compile(r"[^A-Za-z0-9._:@+~/-]")
MODEL_FORM = (
    "a model name is letters, digits and . _ : @ + ~ - in parts joined by '/' "
    "(e.g. gpt-4o-mini, openai/gpt-4o-mini, llama3.1:8b)"
)


class Provider:
    """A configured upstream: one ``[[providers]]`` entry bound to its kind."""

    kind: ClassVar[str] = ""
    # The embedded default config's entry for this kind (settings.DEFAULT_PROVIDERS).
    default_name: ClassVar[str] = ""  # "": the kind's own name
    default_base_url: ClassVar[str] = ""
    default_key_env: ClassVar[str] = ""
    dialects: ClassVar[frozenset[str]] = frozenset()
    pricing_id: ClassVar[str | None] = None
    # Path prefix of the API root that the base URL already contains ("/v1"
    # for OpenAI-style base URLs such as https://api.openai.com/v1).
    base_includes: ClassVar[str] = ""
    # Whether this kind's own model names carry a "/" (an aggregator's "vendor/model",
    # a local server's file path). When not, "opneai/gpt-4o" can only be a typo.
    slashed_models: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.base_url = settings.base_url.rstrip("/")
        self.price_provider = settings.pricing_provider or self.pricing_id
        # Read once at start, like the rest of the settings.
        self._env_key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
        self._good_models: set[str] = set()  # checked once: the request path sees few names

    def spoken_dialect(self, model: str, client: str, preferred: tuple[str, ...]) -> str | None:
        """The dialect to speak to this provider about ``model`` for a ``client``-dialect
        call: the only one it serves the model in (``responses_models``), else the
        client's, else the first of ``preferred`` it speaks (None: it speaks none)."""
        if model in self.settings.responses_models and RESPONSES in self.dialects:
            return RESPONSES
        if client in self.dialects:
            return client
        return next((d for d in preferred if d in self.dialects), None)

    def key_from_env(self) -> str:
        """The gateway's own key for this provider ('' when none is configured)."""
        return self._env_key

    def upstream_url(self, path: str) -> str:
        """Absolute upstream URL for a client path such as ``/v1/chat/completions``."""
        if self.base_includes and path.startswith(self.base_includes + "/"):
            path = path[len(self.base_includes) :]
        return self.base_url + path

    def check_model(self, model: str) -> None:
        """BadRequest (naming the character and the allowed form) unless this kind
        takes ``model``: client input never shapes the upstream URL."""
        if model in self._good_models:
            return
        problem = self.model_problem(model)
        if problem is not None:
            raise BadRequest(f"provider {self.name!r}: {problem}")
        if len(self._good_models) >= 4096:  # bounded: model names come from clients
            self._good_models.clear()
        self._good_models.add(model)

    def model_problem(self, model: str) -> str | None:
        """What is wrong with ``model`` for this kind (None: nothing); a kind whose
        model goes into the URL narrows it."""
        return model_error(model, MODEL_OUTSIDE, MODEL_FORM)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def dialect_headers(self) -> dict[str, str]:
        """Headers a translated request needs that a native client would have sent."""
        return {"Content-Type": "application/json"}

    def reported_cost(self, usage: Usage) -> Decimal | None:
        """The provider's own billed cost for this call, when its usage carries one."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.base_url}>"


def model_error(model: str, outside: re.Pattern[str], form: str) -> str | None:
    """What is wrong with ``model`` (None: nothing): its length, a character outside
    the allowed ones, or an empty, '.' or '..' part between slashes."""
    if not 0 < len(model) <= MAX_MODEL:
        return f"the model name must be 1 to {MAX_MODEL} characters long; {form}"
    bad = outside.search(model)
    if bad is not None:
        return (
            f"model {model[:80]!r}: the character {bad.group()!r} (position {bad.start()}) "
            f"is not allowed; {form}"
        )
    if any(part in ("", ".", "..") for part in model.split("/")):
        return f"model {model[:80]!r}: empty, '.' or '..' parts between '/' are not allowed; {form}"
    return None


def decimal_of(value: object) -> Decimal | None:
    """An exact Decimal from a JSON number or string; None when it isn't one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return None
    return None
