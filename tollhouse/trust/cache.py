"""An answer cache with validity conditions, sans-io.

What may be cached: only what a request opted into (``X-Tollhouse-Cache:
use``) or a configured model's *deterministic* requests (``temperature``
explicitly 0); ``X-Tollhouse-Cache: skip`` bypasses it. What is stored: only
complete, fresh answers from the primary (never errors, never incomplete
streams, never degraded answers, never a cache hit again).

The key covers the dialect, the endpoint, the whole request body (model,
messages, tools and every sampling parameter, the stream flag included)
and the caller's scope. ``X-Tollhouse-Assumes`` is a fingerprint of what
the answer depends on outside the request (a commit, a data snapshot): an
entry stored under other assumptions is a *validity miss*, never a hit.
A hit is not a fresh answer, so it is served with trust ``degraded``.

Where bodies live: in this process's memory (at most ``trust.cache_max_entries``,
each for ``trust.cache_ttl_s``), never in the ledger; with ``[state]`` Redis, in
Redis, each key expiring after ``trust.cache_ttl_s`` (and, with the ``appendonly``
the trust state requires, in Redis's append-only file until it is rewritten).

>>> cache = AnswerCache(max_entries=10)
>>> cache.put(CacheEntry("k", "v1", b"{}", "application/json", "openai/gpt-4o", 0.0, 60.0))
>>> cache.get("k", "v2", now=1.0)[0]
'validity_miss'
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

HIT, MISS, VALIDITY_MISS = "hit", "miss", "validity_miss"
USE, SKIP = "use", "skip"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    assumes: str | None
    body: bytes
    content_type: str
    served_by: str
    created: float
    expires: float


def cache_key(dialect: str, path: str, payload: dict[str, Any], scope: str) -> str:
    canonical = json.dumps(
        [dialect, path, scope, payload], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def wants_cache(
    header: str | None, model: str, payload: dict[str, Any], models: Collection[str]
) -> bool:
    """Whether this request may be answered from (and stored into) the cache."""
    if header is not None:
        return header.strip().lower() == USE
    if not models or (model not in models and "*" not in models):
        return False
    temperature = payload.get("temperature")
    if temperature is None:  # Gemini keeps it in generationConfig
        config = payload.get("generationConfig")
        temperature = config.get("temperature") if isinstance(config, dict) else None
    return (
        isinstance(temperature, int | float)
        and not isinstance(temperature, bool)
        and (temperature == 0)
    )


def storable(status: int, complete: bool, fresh: bool) -> bool:
    """Only a complete, fresh 2xx answer from the primary is ever stored."""
    return 200 <= status < 300 and complete and fresh


class AnswerCache:
    """Entries by key, least recently used dropped first. The caller passes the clock."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[str, CacheEntry] = OrderedDict()

    def get(self, key: str, assumes: str | None, now: float) -> tuple[str, CacheEntry | None]:
        entry = self.entries.get(key)
        if entry is None:
            return MISS, None
        if now >= entry.expires:
            del self.entries[key]
            return MISS, None
        if entry.assumes != assumes:
            return VALIDITY_MISS, None
        self.entries.move_to_end(key)
        return HIT, entry

    def put(self, entry: CacheEntry) -> None:
        if self.max_entries <= 0:
            return
        self.entries[entry.key] = entry
        self.entries.move_to_end(entry.key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
