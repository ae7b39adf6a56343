"""A request's prompt as ordered segments, and the simulator's prompt cache.

Each dialect's parser turns a request into :class:`Prompt` segments in the
order the provider caches them (tools and system first, then messages). A
segment is one message (implicit-caching dialects) or one content block
(Anthropic), with its token count, a canonical key and any ``cache_control``
TTL.

Implicit caching (OpenAI, xAI, OpenRouter, compat, Gemini): when the whole
prompt has at least ``min_tokens`` tokens, the longest *message-boundary*
prefix that excludes the last message and was seen before (as any prefix of
an earlier request to the same flavor and model) is reported as cached,
rounded down to a multiple of 128.

Explicit caching (Anthropic): segments carrying ``cache_control`` are
breakpoints. The longest breakpoint prefix already cached is a read; the
tokens from there to the last breakpoint are written, each stretch with the
TTL of the breakpoint that ends it. Prefixes shorter than ``min_tokens``
are never cached (the real API silently skips them). Entries never expire.

>>> cache = PromptCache(min_tokens=0)
>>> p = Prompt([Segment(1200, "sys", turn=-1), Segment(5, "hi", turn=0)])
>>> cache.implicit("openai/gpt-4o", p), cache.implicit("openai/gpt-4o", p)
(0, 1152)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

CACHE_GRANULE = 128


@dataclass(frozen=True, slots=True)
class Segment:
    """One cacheable piece of a prompt."""

    tokens: int
    key: str
    turn: int = 0
    """Message index; -1 for the head (tools, system instructions)."""
    cache_ttl: str | None = None
    """``"5m"`` or ``"1h"`` when the piece carries ``cache_control``."""


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """Explicit-cache accounting for one request."""

    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


class Prompt:
    """Ordered segments with cumulative token counts and prefix digests."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.cumulative: list[int] = []
        self.digests: list[str] = []
        running, digest = 0, hashlib.sha256()
        for segment in segments:
            running += segment.tokens
            digest.update(segment.key.encode() + b"\x00")
            self.cumulative.append(running)
            self.digests.append(digest.copy().hexdigest())

    @property
    def tokens(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def turn_ends(self) -> list[int]:
        """Indices of the last segment of each turn (the head counts as one)."""
        segs = self.segments
        return [
            i for i in range(len(segs)) if i + 1 == len(segs) or segs[i + 1].turn != segs[i].turn
        ]

    def breakpoints(self) -> list[int]:
        return [i for i, s in enumerate(self.segments) if s.cache_ttl is not None]


class _Bounded:
    """An insertion-ordered set that forgets its oldest keys past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._keys: dict[str, None] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys.pop(key, None)
            self._keys[key] = None
        while len(self._keys) > self.limit:
            del self._keys[next(iter(self._keys))]

    def add(self, key: str) -> None:
        self.update((key,))

    def clear(self) -> None:
        self._keys.clear()


class PromptCache:
    """Which prompt prefixes this simulator has seen, per flavor and model.

    Memory is bounded (``limit`` prefixes of each kind) so a long-running
    simulator under a benchmark does not grow without end.
    """

    def __init__(self, min_tokens: int, limit: int = 200_000) -> None:
        self.min_tokens = min_tokens
        self._seen = _Bounded(limit)
        self._entries = _Bounded(limit)

    def clear(self) -> None:
        self._seen.clear()
        self._entries.clear()

    def implicit(self, namespace: str, prompt: Prompt) -> int:
        """Cached tokens for ``prompt`` under implicit caching; remembers its prefixes."""
        ends = prompt.turn_ends()
        last_turn = prompt.segments[-1].turn if prompt.segments else 0
        hit = 0
        if prompt.tokens >= self.min_tokens:
            for i in reversed(ends):
                seen = namespace + prompt.digests[i] in self._seen
                if prompt.segments[i].turn != last_turn and seen:
                    hit = prompt.cumulative[i]
                    break
        self._seen.update(namespace + prompt.digests[i] for i in ends)
        return hit // CACHE_GRANULE * CACHE_GRANULE

    def explicit(self, namespace: str, prompt: Prompt) -> CacheOutcome:
        """Reads and writes for ``prompt``'s ``cache_control`` breakpoints."""
        points = [i for i in prompt.breakpoints() if prompt.cumulative[i] >= self.min_tokens]
        read_at = next(
            (i for i in reversed(points) if namespace + prompt.digests[i] in self._entries), None
        )
        read = prompt.cumulative[read_at] if read_at is not None else 0
        writes = {"5m": 0, "1h": 0}
        start = read
        for i in points:
            if read_at is not None and i <= read_at:
                continue
            ttl = prompt.segments[i].cache_ttl or "5m"
            writes[ttl if ttl in writes else "5m"] += prompt.cumulative[i] - start
            start = prompt.cumulative[i]
            self._entries.add(namespace + prompt.digests[i])
        return CacheOutcome(read=read, write_5m=writes["5m"], write_1h=writes["1h"])
