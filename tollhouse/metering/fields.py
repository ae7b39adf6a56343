"""Tolerant accessors for provider JSON: a field of the wrong type reads as absent.

Parsers on the request path must never raise on odd input, so they read
through these instead of indexing.

>>> as_int({"n": 3}.get("n")), as_int("3"), as_int(None)
(3, 0, 0)
>>> describe_error({"type": "overloaded_error", "message": "Overloaded"})
'overloaded_error: Overloaded'
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_MAX_ERROR = 300
_TYPE_FIELD = re.compile(rb'\s*\{\s*"type"\s*:\s*"([^"\\]*)"')
ERROR_KINDS = ("type", "status", "code")


def as_int(value: Any) -> int:
    """A token count: ints (and integral decimals) as they are, anything else 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return 0


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def describe_error(error: Any, kinds: tuple[str, ...] = ERROR_KINDS) -> str:
    """A short ``"kind: message"`` for an error object of any dialect.

    ``kinds`` lists the fields that name the error, best first (Anthropic
    ``type``, Gemini ``status``, OpenAI ``type``/``code``).
    """
    if not isinstance(error, dict):
        return _clip(str(error))
    kind = next((str(error[key]) for key in kinds if error.get(key) not in (None, "")), None)
    message = error.get("message")
    parts = [part for part in (kind, message if isinstance(message, str) else None) if part]
    return _clip(": ".join(parts) or "error")


def sniff_type(data: bytes) -> bytes | None:
    """The leading ``"type"`` of a JSON event, without parsing it (else None).

    Used when a stream omits ``event:`` lines; OpenAI and Anthropic put
    ``type`` first in every event object.
    """
    found = _TYPE_FIELD.match(data)
    return found.group(1) if found else None


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"
