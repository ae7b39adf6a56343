"""Per-model request and token quotas, enforced like a real provider (sans-io).

Each (flavor, model) pair the quota applies to owns two token buckets: one
of requests (``rpm``) and one of tokens (``tpm``). A bucket holds
``burst_s`` seconds' worth of its per-minute limit (the whole minute by
default) and refills continuously at ``limit / 60`` per second, starting
full. A request is admitted when both buckets hold enough for it and then
spends 1 request and its tokens; a rejected request spends nothing. A
request's tokens are its prompt tokens plus its max-tokens field (or the
simulator's default answer length), as OpenAI estimates them at admission;
a request larger than the whole token bucket waits for a full bucket.

OpenAI documents that a per-minute limit "may be enforced over shorter
periods (60,000 requests/minute as 1,000 requests/second)": ``burst_s=1``
models that quantization. With the default ``burst_s=60`` a quota of 500
admits a burst of 500, then one request per 120 ms.

What the headers report (:class:`Budget`): ``limit`` is the per-minute
limit, ``remaining`` what may be sent right now (the bucket's whole
requests or tokens), ``reset_s`` the time until the bucket is full again.
``retry_after_s`` of a rejection is the time until the bucket holds enough
for the rejected request.

>>> clock = FakeClock()
>>> limiter = QuotaLimiter(rpm=2, clock=clock)
>>> [limiter.check("openai", "gpt-4o-mini").admitted for _ in range(3)]
[True, True, False]
>>> limiter.check("openai", "gpt-4o-mini").retry_after_s
30.0
>>> clock.advance(30); limiter.check("openai", "gpt-4o-mini").admitted
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic`` unless a test brings its own)."""


@dataclass(slots=True)
class FakeClock:
    """A clock tests move by hand: ``QuotaLimiter(rpm=5, clock=FakeClock())``."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True, slots=True)
class Budget:
    """One bucket's state as a provider's rate-limit headers report it."""

    limit: int
    """Per-minute limit."""
    remaining: int
    """Whole requests (or tokens) that may be sent right now."""
    reset_s: float
    """Seconds until the bucket is full again."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The quota's answer for one request."""

    admitted: bool
    retry_after_s: float = 0.0
    """Seconds until the rejected request would fit (0 when admitted)."""
    requests: Budget | None = None
    """The request bucket after this request (None: no request quota applies)."""
    tokens: Budget | None = None
    """The token bucket after this request (None: no token quota applies)."""
    exceeded: str | None = None
    """``"requests"`` or ``"tokens"``: which quota rejected the request."""
    requested_tokens: int = 0


UNLIMITED = Verdict(admitted=True)
_EPSILON = 1e-9
"""Refill arithmetic in floats: a bucket this close to a whole unit holds it."""


@dataclass(slots=True)
class TokenBucket:
    """``capacity`` units refilled continuously at ``rate`` per second, starting full."""

    limit: int
    capacity: float
    rate: float
    level: float
    updated: float

    @classmethod
    def per_minute(cls, limit: int, burst_s: float, now: float) -> TokenBucket:
        capacity = max(1.0, limit * burst_s / 60)
        return cls(limit, capacity, limit / 60, capacity, now)

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` units are in the bucket (after :meth:`refill`)."""
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)

    def budget(self) -> Budget:
        remaining = math.floor(self.level + _EPSILON)
        return Budget(self.limit, max(0, remaining), (self.capacity - self.level) / self.rate)


@dataclass(slots=True)
class _Buckets:
    requests: TokenBucket | None
    tokens: TokenBucket | None

    def refill(self, now: float) -> None:
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.refill(now)

    def shortfall(self, tokens: int) -> tuple[float, str | None]:
        """(seconds until the request fits, the quota that makes it wait)."""
        waits = [
            (bucket.wait_for(amount), name)
            for bucket, amount, name in (
                (self.requests, 1, "requests"),
                (self.tokens, tokens, "tokens"),
            )
            if bucket is not None
        ]
        wait, name = max(waits, default=(0.0, None))
        return (wait, name) if wait > 0 else (0.0, None)

    def take(self, tokens: int) -> None:
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(tokens)

    def verdict(self, admitted: bool, wait: float, exceeded: str | None, tokens: int) -> Verdict:
        return Verdict(
            admitted=admitted,
            retry_after_s=wait,
            requests=self.requests.budget() if self.requests else None,
            tokens=self.tokens.budget() if self.tokens else None,
            exceeded=exceeded,
            requested_tokens=tokens,
        )


@dataclass(slots=True)
class _Counts:
    admitted: int = 0
    rate_limited: int = 0


@dataclass(slots=True)
class QuotaLimiter:
    """Decides, per (flavor, model), whether a request is within its quota.

    ``models`` limits the quota to those model names (empty: every model).
    Counts every request it is asked about, limited or not.
    """

    rpm: int | None = None
    tpm: int | None = None
    burst_s: float = 60.0
    models: frozenset[str] = frozenset()
    clock: Clock = time.monotonic
    _buckets: dict[tuple[str, str], _Buckets] = field(default_factory=dict, init=False)
    _counts: dict[str, _Counts] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.burst_s <= 0:
            raise ValueError("burst_s must be positive")
        self.models = frozenset(_bare(m) for m in self.models)

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def applies_to(self, model: str) -> bool:
        return self.enabled and (not self.models or _bare(model) in self.models)

    def check(self, flavor: str, model: str, tokens: int = 0) -> Verdict:
        """Admit (and spend quota) or reject one request of ``tokens`` tokens."""
        model = _bare(model)
        counts = self._counts.setdefault(model, _Counts())
        if not self.applies_to(model):
            counts.admitted += 1
            return UNLIMITED
        buckets = self._bucket_pair(flavor, model)
        buckets.refill(self.clock())
        wait, exceeded = buckets.shortfall(tokens)
        if exceeded is not None:
            counts.rate_limited += 1
            return buckets.verdict(False, wait, exceeded, tokens)
        buckets.take(tokens)
        counts.admitted += 1
        return buckets.verdict(True, 0.0, None, tokens)

    def _bucket_pair(self, flavor: str, model: str) -> _Buckets:
        key = (flavor, model)
        if key not in self._buckets:
            now = self.clock()
            self._buckets[key] = _Buckets(
                TokenBucket.per_minute(self.rpm, self.burst_s, now) if self.rpm else None,
                TokenBucket.per_minute(self.tpm, self.burst_s, now) if self.tpm else None,
            )
        return self._buckets[key]

    def stats(self) -> dict[str, Any]:
        """``{"admitted": n, "rate_limited": n, "by_model": {model: {...}}}``."""
        by_model = {
            model: {"admitted": c.admitted, "rate_limited": c.rate_limited}
            for model, c in sorted(self._counts.items())
        }
        return {
            "admitted": sum(c.admitted for c in self._counts.values()),
            "rate_limited": sum(c.rate_limited for c in self._counts.values()),
            "by_model": by_model,
        }

    def reset(self) -> None:
        """Full buckets and zero counts."""
        self._buckets.clear()
        self._counts.clear()


def _bare(model: str) -> str:
    return model.removeprefix("models/")


def parse_models(text: str | Iterable[str]) -> frozenset[str]:
    """``"gpt-4o-mini, o3"`` (or an iterable of names) as a set of model names."""
    names = text.split(",") if isinstance(text, str) else text
    return frozenset(_bare(n.strip()) for n in names if n.strip())
