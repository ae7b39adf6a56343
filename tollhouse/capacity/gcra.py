"""GCRA, the generic cell rate algorithm, with a numeric cost: one number of state per key.

The state is the *theoretical arrival time* (TAT): when the key's bucket would
be empty again at the sustained rate. A request of ``cost`` units pushes the
TAT by ``cost`` emission intervals; it is admitted when the pushed TAT lies no
further ahead of ``now`` than the burst tolerance.

Units make it exact. ``now`` is integer microseconds; the TAT is kept in
*ticks* of ``1 / sustained`` microseconds, so an emission interval is exactly
``window_us`` ticks and nothing is ever rounded: bursts fit exactly and the
window guarantee below holds to the unit. (A Redis Lua port, whose numbers are
doubles, keeps the TAT relative to the key's last update, or as backlog plus
timestamp, to stay below 2**53.)

Why the sustained rate is ``limit - burst + 1``: a limit of L per window W must
hold in *every* window, and a burst of B at the start of a window plus a
sustained rate of R over it admits up to R + B - 1. With R = L - B + 1, no
window of W admits more than L, for any mix of costs up to B. (A request
costing more than B is admitted only into an empty bucket, so it cannot be
starved; such a request may overrun that one window.)

>>> rate = Rate.per_minute(60, burst=1)             # one request a second, no burst
>>> first = decide(NEVER, 1, 0, rate)                # admitted
>>> first.admitted, decide(first.tat, 1, 0, rate).wait   # the next one: in 1 s
(True, 1000000)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

US = 1_000_000
"""Microseconds per second."""

MINUTE_US = 60 * US

NEVER = -(2**80)
"""A TAT long past: an empty bucket, whatever the clock's origin."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` units per ``window_us``, of which up to ``burst`` may go at once."""

    limit: int
    burst: int
    window_us: int = MINUTE_US

    def __post_init__(self) -> None:
        if self.limit < 1 or not 1 <= self.burst <= self.limit or self.window_us < 1:
            raise ValueError(f"need limit >= 1 and 1 <= burst <= limit, got {self}")

    @classmethod
    def per_minute(cls, limit: int, burst: int) -> Rate:
        return cls(limit, burst, MINUTE_US)

    @property
    def sustained(self) -> int:
        """Units per window once the burst is spent."""
        return self.limit - self.burst + 1

    def ticks(self, us: int) -> int:
        return us * self.sustained

    def to_us(self, ticks: int) -> int:
        """Ticks as microseconds, rounded up (a wait never ends early)."""
        return -(-ticks // self.sustained)


class Decision(NamedTuple):
    admitted: bool
    tat: int
    """The new TAT (ticks) when admitted, else the unchanged one."""
    wait: int
    """Microseconds until the same request would be admitted (0 when admitted)."""


def decide(tat: int, cost: int, now: int, rate: Rate) -> Decision:
    """Admit ``cost`` units at ``now`` (µs), or say how long until it could be admitted."""
    t = rate.ticks(now)
    new_tat = max(tat, t) + cost * rate.window_us
    # An empty bucket (tat <= now) takes any single request, so a request bigger
    # than the burst can't wait for ever; otherwise the pushed TAT must fit the burst.
    allow_at = min(tat, new_tat - rate.burst * rate.window_us)
    if t >= allow_at:
        return Decision(True, new_tat, 0)
    return Decision(False, tat, rate.to_us(allow_at - t))


def adjust(tat: int, delta: int, now: int, rate: Rate, *, until: int | None = None) -> int:
    """Charge (``delta`` > 0) or refund (< 0) units after the fact; the new TAT.

    A charge lands from now on (the usage was just observed). A refund takes back
    only virtual time still ahead of now, and with ``until`` (the TAT right after
    the reservation was admitted) only that reservation's own slot: time that has
    already drained is never handed out twice.
    """
    t = rate.ticks(now)
    if delta >= 0:
        return max(tat, t) + delta * rate.window_us
    ahead = (tat if until is None else min(tat, until)) - t
    return tat - max(0, min(-delta * rate.window_us, ahead))


def backlog(tat: int, now: int, rate: Rate) -> int:
    """Units still 'in the bucket' at ``now`` (µs): used lately, not yet drained."""
    return max(0, tat - rate.ticks(now)) // rate.window_us
