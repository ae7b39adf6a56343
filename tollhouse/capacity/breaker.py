"""A circuit breaker per deployment: stop sending to one that keeps failing, probe it later.

Sans-io: ``now`` is passed in. Closed counts consecutive failures; at
``failures`` it opens. Open refuses everything for ``reset_after`` seconds,
then lets one probe through (half-open); the probe's success closes the
circuit, its failure opens it again for another ``reset_after``. The probe
is a real client request, one at a time: the trickle that re-admits a
recovered deployment is bounded by construction.

>>> b = CircuitBreaker(failures=2, reset_after=30.0)
>>> b.record(False, now=0.0, reason="overloaded"); b.record(False, now=1.0); b.state, b.reason
('open', 'overloaded')
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
        self.reason = ""
        """Why it last opened: the failure that tripped it (kept for reports)."""
        self.news = False
        """Set when it opens here; the shell clears it once it has told the other instances."""

    @property
    def until(self) -> float:
        """When an open circuit lets its next probe through."""
        return self.opened_at + self.reset_after

    def allow(self, now: float) -> bool:
        """May a request go now? In half-open, True takes the one probe slot."""
        if self.state == OPEN:
            if now < self.until:
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
            return max(0.0, self.until - now)
        if self.state == HALF_OPEN and self.probing:
            return math.inf
        return 0.0

    def record(self, ok: bool, now: float, reason: str = "") -> None:
        """An outcome. While open, late outcomes of requests sent before it opened are ignored."""
        if self.state == OPEN:
            return
        if ok:
            self.state, self.consecutive, self.probing = CLOSED, 0, False
            return
        self.consecutive += 1
        self.reason = reason or self.reason
        if self.state == HALF_OPEN or self.consecutive >= self.failures:
            self.state, self.opened_at, self.probing, self.news = OPEN, now, False, True

    def trip(self, now: float, reason: str, for_seconds: float | None = None) -> None:
        """Open at once: provider-wide evidence, or a mark another instance set (no news then)."""
        until = now + (self.reset_after if for_seconds is None else for_seconds)
        if self.state == OPEN and self.until >= until:
            return
        self.state, self.probing, self.reason = OPEN, False, reason
        self.opened_at = until - self.reset_after
        self.news = for_seconds is None

    def reset(self) -> None:
        """Closed, as new (``tollhouse models reset``)."""
        self.state, self.consecutive, self.probing, self.news = CLOSED, 0, False, False
        self.opened_at = -math.inf

    def abandon(self) -> None:
        """The probe ended without a verdict (cancelled): let the next one through."""
        if self.state == HALF_OPEN:
            self.probing = False
