"""Outside values made safe to keep: valid bounded text, sane token counts.

Everything that reaches the ledger, the journal, metrics or logs from outside
(headers, process names and directories, provider usage and ids, model
names) passes through here once, at the edge. A header may carry bytes that
aren't UTF-8 (aiohttp hands them over as lone surrogates, which SQLite,
Postgres and Prometheus all refuse), a NUL (Postgres refuses it), or a
megabyte; a provider may report ``"prompt_tokens": 1e30`` or ``-5``. None of
that may stop a row, a batch or a restart.

>>> text("acme\\udcff")
'acme\\ufffd'
>>> text("x" * 500, 8)
'xxxxxxx…'
>>> count(10**30), count(-5), count(42)
(None, None, 42)
"""

from __future__ import annotations

import re
from typing import Any

# No call has ever used a trillion tokens; a count above this is a provider's bug.
MAX_TOKENS = 10**12
TEXT_LIMIT = 256  # names: projects, models, processes, tag keys and values, ids
LONG_TEXT_LIMIT = 1024  # free text: error descriptions

# C0 controls (NUL included), DEL and C1 controls: never useful in a name, and NUL
# is refused by Postgres. Tabs and newlines too: a name is one line.
# Lone surrogates: what Python makes of bytes that weren't UTF-8 (one per byte).
_UNWRITABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def text(value: str, limit: int = TEXT_LIMIT) -> str:
    """``value`` as valid UTF-8 text with no control characters, at most ``limit`` long.

    Each byte that wasn't UTF-8 (a surrogate escape), each lone surrogate and
    each control character becomes U+FFFD; a value cut short ends in "…".
    """
    if len(value) <= limit and value.isascii() and value.isprintable():
        return value  # the common case, in well under a microsecond
    value = _UNWRITABLE.sub("\ufffd", value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def maybe_text(value: Any, limit: int = TEXT_LIMIT) -> str | None:
    """:func:`text` for an optional value; a non-string becomes its ``str``."""
    if value is None:
        return None
    return text(value if isinstance(value, str) else str(value), limit)


def count(value: int) -> int | None:
    """A token count if it is sane (0 ≤ value ≤ :data:`MAX_TOKENS`), else None."""
    return value if 0 <= value <= MAX_TOKENS else None


def number(value: float | None, limit: float = 1e12) -> float | None:
    """A finite, non-negative measurement (a latency, a wait) within ``limit``, else None."""
    if value is None or not 0 <= value <= limit:  # NaN fails both comparisons
        return None
    return value
