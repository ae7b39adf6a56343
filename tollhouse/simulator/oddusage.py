"""Hostile usage: the ``usage=KIND`` fault, for gateways that must survive a provider's bugs.

Each kind rewrites every usage object of an answer (``usage``,
``usageMetadata``; in a body or in each stream frame, any dialect) the way
a buggy provider might. The bill stays the true one: what was really used.

- ``huge``: every count becomes ``1e30``
- ``bignum``: every count becomes a 40-digit integer
- ``negative``: every count becomes negative
- ``string``: every count becomes a string (``"12"``)
- ``null``: the usage object is ``null``
- ``junk``: every count becomes a nested object (``{"n": [12, "x"]}``)
- ``cache_over``: cache reads far above the input they are part of

>>> spoil({"usage": {"prompt_tokens": 3, "x": "y"}}, "negative")
{'usage': {'prompt_tokens': -4, 'x': 'y'}}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

USAGE_KEYS = frozenset({"usage", "usageMetadata", "usage_metadata"})
_CACHE_READS = frozenset(
    {"cached_tokens", "cache_read_input_tokens", "cachedContentTokenCount", "cached_input_tokens"}
)
_COUNT: dict[str, Callable[[int], Any]] = {
    "huge": lambda n: 1e30,
    "bignum": lambda n: 10**40 + n,
    "negative": lambda n: -n - 1,
    "string": str,
    "junk": lambda n: {"n": [n, "x"]},
}
KINDS = frozenset({*_COUNT, "null", "cache_over"})


def spoil(value: Any, kind: str) -> Any:
    """``value`` (parsed JSON) with each usage object in it spoiled as ``kind`` says."""
    if isinstance(value, list):
        return [spoil(item, kind) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: _spoil_usage(item, kind) if key in USAGE_KEYS else spoil(item, kind)
        for key, item in value.items()
    }


def spoil_frame(data: bytes, kind: str) -> bytes:
    """One stream frame (an SSE event, or a piece of Gemini's JSON array) spoiled.

    The frame's one JSON object sits between its first ``{`` and its last ``}``.
    """
    start, end = data.find(b"{"), data.rfind(b"}")
    if start < 0 or end < start:
        return data  # [DONE], "]": no usage in it
    try:
        parsed = json.loads(data[start : end + 1])
    except ValueError:
        return data
    body = json.dumps(spoil(parsed, kind), separators=(",", ":")).encode()
    return data[:start] + body + data[end + 1 :]


def _spoil_usage(usage: Any, kind: str) -> Any:
    if kind == "null" or usage is None:
        return None
    if kind == "cache_over":
        return _cache_over(usage)
    return _counts(usage, _COUNT[kind])


def _counts(value: Any, change: Callable[[int], Any]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return change(value)
    if isinstance(value, dict):
        return {key: _counts(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_counts(item, change) for item in value]
    return value


def _cache_over(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: 10**6 + v if k in _CACHE_READS and isinstance(v, int) else _cache_over(v)
            for k, v in value.items()
        } | ({"cachedContentTokenCount": 10**6} if "promptTokenCount" in value else {})
    if isinstance(value, list):
        return [_cache_over(item) for item in value]
    return value
