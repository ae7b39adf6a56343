"""When to retry, and how long to wait first: full-jitter backoff under a retry budget.

Sans-io: the caller passes ``now``; randomness comes from an injectable RNG.

The budget is what keeps a gateway from multiplying an outage: an SDK retries
3 times, the gateway 3 times, across 2 fallbacks, and one user request becomes
18 upstream calls. Here retries may be at most ``budget_ratio`` of the
upstream's recent requests (plus ``min_retries`` a window, so a quiet upstream's
first failure can still retry).

>>> policy = RetryPolicy(rng=random.Random(7))
>>> policy.delay(0, hint=None) <= 0.5
True
>>> policy.delay(3, hint=30.0)      # the provider's word wins, even above the cap
30.0
"""

from __future__ import annotations

import math
import random
from collections import deque

_SLOTS = 12
"""A window is counted in this many slots: memory stays fixed whatever the traffic."""


class _SlidingCount:
    """Events over the last ``window`` seconds, in fixed slots (a slot's worth of slack)."""

    def __init__(self, window: float) -> None:
        self.slot = window / _SLOTS
        self.counts: deque[tuple[int, int]] = deque()  # (slot index, count)

    def add(self, now: float) -> None:
        index = math.floor(now / self.slot)
        if self.counts and self.counts[-1][0] == index:
            self.counts[-1] = (index, self.counts[-1][1] + 1)
        else:
            self.counts.append((index, 1))

    def total(self, now: float) -> int:
        oldest = math.floor(now / self.slot) - _SLOTS + 1
        while self.counts and self.counts[0][0] < oldest:
            self.counts.popleft()
        return sum(count for _, count in self.counts)


class RetryPolicy:
    """Full-jitter exponential backoff and a per-upstream retry budget.

    Call :meth:`record_request` once per original request (not per retry), and
    :meth:`try_spend_retry` before each retry; False means give up (or fall back).
    """

    def __init__(
        self,
        *,
        base: float = 0.5,
        cap: float = 8.0,
        max_attempts: int = 3,
        budget_ratio: float = 0.2,
        budget_window: float = 60.0,
        min_retries: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap <= 0 or max_attempts < 1 or budget_ratio < 0 or budget_window <= 0:
            raise ValueError("RetryPolicy needs base, cap, window > 0, max_attempts >= 1")
        self.base, self.cap, self.max_attempts = base, cap, max_attempts
        self.budget_ratio, self.budget_window, self.min_retries = (
            budget_ratio,
            budget_window,
            min_retries,
        )
        self.rng = rng or random.Random()
        self._requests: dict[str, _SlidingCount] = {}
        self._retries: dict[str, _SlidingCount] = {}

    def delay(self, attempt: int, hint: float | None) -> float:
        """Seconds before retry number ``attempt`` (0 for the first retry).

        Full jitter: uniform over [0, min(cap, base * 2**attempt)], so a crowd of
        failed clients spreads out instead of returning in a wave. Never less
        than the provider's ``hint``.
        """
        ceiling = min(self.cap, self.base * 2.0 ** min(max(attempt, 0), 64))
        wait = self.rng.uniform(0.0, ceiling)
        return wait if hint is None else max(wait, hint)

    def attempts_left(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (0 = the first try) is within max_attempts."""
        return attempt < self.max_attempts

    def record_request(self, upstream: str, now: float) -> None:
        self._count(self._requests, upstream).add(now)

    def try_spend_retry(self, upstream: str, now: float) -> bool:
        """Take one retry from ``upstream``'s budget; False when it is spent."""
        requests = self._count(self._requests, upstream).total(now)
        retries = self._count(self._retries, upstream)
        if retries.total(now) + 1 > self.budget_ratio * requests + self.min_retries:
            return False
        retries.add(now)
        return True

    def _count(self, table: dict[str, _SlidingCount], upstream: str) -> _SlidingCount:
        found = table.get(upstream)
        if found is None:
            found = table[upstream] = _SlidingCount(self.budget_window)
        return found
