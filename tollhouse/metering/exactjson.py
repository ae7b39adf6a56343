"""JSON with exact decimals, for usage objects that carry money.

Provider-reported costs (OpenRouter ``usage.cost``) are JSON numbers with more
digits than a float keeps, so every non-integer number is read as a
:class:`~decimal.Decimal`. :func:`dumps` writes them back as the same JSON
numbers; ``json.dumps(raw, default=str)`` also works but turns them into strings.

>>> raw = loads(b'{"cost": 0.000123456789012345678}')
>>> raw["cost"]
Decimal('0.000123456789012345678')
>>> dumps(raw)
'{"cost": 0.000123456789012345678}'
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_DECODER = json.JSONDecoder(parse_float=Decimal)


def loads(data: bytes | str) -> Any:
    """Parse ``data``; None when it is not JSON (never raises).

    Through the one shared decoder: ``json.loads(..., parse_float=...)`` builds a
    new decoder on every call, a measurable cost on every metered response.
    """
    try:
        text = data if isinstance(data, str) else data.decode("utf-8-sig")
        return _DECODER.decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def decoder() -> json.JSONDecoder:
    """The shared decimal-exact decoder (for ``raw_decode`` over a stream)."""
    return _DECODER


def dumps(value: Any) -> str:
    """Serialise ``value`` (as returned by :func:`loads`) with exact decimal numbers."""
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else "null"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(key))}: {dumps(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    return json.dumps(value)
