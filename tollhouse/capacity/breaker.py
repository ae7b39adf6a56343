"""A circuit breaker per upstream: stop sending to one that keeps failing, probe it later.

Sans-io: ``now`` is passed in. Closed counts consecutive failures; at
``failures`` it opens. Open refuses everything for ``reset_after`` seconds,
then lets one probe through (half-open); the probe's success closes the
circuit, its failure opens it again for another ``reset_after``.

>>> b = CircuitBreaker(failures=2, reset_after=30.0)
>>> b.record(False, now=0.0); b.record(False, now=1.0); b.state
'open'
>>> b.allow(now=10.0), b.allow(now=31.0), b.allow(now=31.0)   # one probe at a time
(False, True, False)
"""

from __future__ import annotations

import math

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe."""

    def __init__(self, *, failures: int = 5, reset_after: float = 30.0) -> None:
        if failures < 1 or reset_after < 0:
            raise ValueError("CircuitBreaker needs failures >= 1 and reset_after >= 0")
        self.failures = failures
        self.reset_after = reset_after
        self.state = CLOSED
        self.opened_at = -math.inf
        self.consecutive = 0
        self.probing = False

    def allow(self, now: float) -> bool:
        """May a request go now? In half-open, True takes the one probe slot."""
        if self.state == OPEN:
            if now - self.opened_at < self.reset_after:
                return False
            self.state, self.probing = HALF_OPEN, False
        if self.state == HALF_OPEN:
            if self.probing:
                return False
            self.probing = True
        return True

    def wait(self, now: float) -> float:
        """Seconds until :meth:`allow` could say yes (``math.inf``: when the probe reports)."""
        if self.state == OPEN:
            return max(0.0, self.opened_at + self.reset_after - now)
        if self.state == HALF_OPEN and self.probing:
            return math.inf
        return 0.0

    def record(self, ok: bool, now: float) -> None:
        """An outcome. While open, late outcomes of requests sent before it opened are ignored."""
        if self.state == OPEN:
            return
        if ok:
            self.state, self.consecutive, self.probing = CLOSED, 0, False
            return
        self.consecutive += 1
        if self.state == HALF_OPEN or self.consecutive >= self.failures:
            self.state, self.opened_at, self.probing = OPEN, now, False

    def abandon(self) -> None:
        """The probe ended without a verdict (cancelled): let the next one through."""
        if self.state == HALF_OPEN:
            self.probing = False
