"""The dialects clients speak, by name: the one table the request path asks.

Explicit and read-only, like :mod:`tollhouse.metering.registry`: adding a
dialect is a module in this package and a line here (ARCHITECTURE.md).

>>> list(DIALECTS)
['openai-chat', 'openai-responses', 'anthropic', 'gemini']
>>> NATIVE
('openai-chat', 'openai-responses', 'anthropic', 'gemini')
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tollhouse.ingress.anthropic import AnthropicMessages
from tollhouse.ingress.base import Dialect
from tollhouse.ingress.gemini import Gemini
from tollhouse.ingress.openai_chat import OpenAIChat
from tollhouse.ingress.openai_responses import OpenAIResponses


def build(dialects: tuple[Dialect, ...]) -> Mapping[str, Dialect]:
    """A registry of ``dialects`` (tests build one with a toy dialect added)."""
    return MappingProxyType({d.name: d for d in dialects})


DIALECTS: Mapping[str, Dialect] = build(
    (OpenAIChat(), OpenAIResponses(), AnthropicMessages(), Gemini())
)
DEFAULT = DIALECTS["openai-chat"]  # errors on paths no dialect owns are rendered in it


def native(dialects: Mapping[str, Dialect]) -> tuple[str, ...]:
    """The dialects a call can be translated into, in preference order."""
    return tuple(d.name for d in dialects.values() if d.native_path)


NATIVE = native(DIALECTS)
# Every dialect's own request headers: not sent when a call goes to another dialect.
REQUEST_HEADERS = tuple(sorted({p for d in DIALECTS.values() for p in d.request_headers}))
# Every dialect's own answer headers: not shown to a client of another dialect.
ANSWER_HEADERS = tuple(sorted({p for d in DIALECTS.values() for p in d.answer_headers}))
# Where any client puts a key: never forwarded upstream.
AUTH_HEADERS = frozenset(h for d in DIALECTS.values() for h in d.auth_headers)


def dialect_of_path(path: str) -> Dialect:
    """The dialect errors on ``path`` are answered in (any method, any path)."""
    return next((d for d in DIALECTS.values() if path.startswith(d.path_prefixes)), DEFAULT)


def metered_dialect(path: str) -> Dialect | None:
    """The dialect whose metered endpoint ``path`` is (whatever the method), or None."""
    return next((d for d in DIALECTS.values() if d.meters(path)), None)
