"""One quota's admission state: request and token buckets, in-flight slots, cooldown.

Sans-io: every method that depends on time takes ``now`` (seconds, any
monotonic origin). One :class:`QuotaState` per upstream key, and one per
(upstream, model) where a model has its own limits or has told us about them.

>>> q = QuotaState(Limits(rpm=60, burst=1))
>>> q.try_admit(100, now=0.0)        # admitted: one request and 100 tokens reserved
0.0
>>> q.try_admit(100, now=0.0)        # the next fits in one second
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from tollhouse.capacity import gcra
from tollhouse.capacity.gcra import NEVER, US, Rate


@dataclass(frozen=True)
class Limits:
    """What a provider allows one key (or one model on it). None: no such limit.

    ``burst`` requests (``token_burst`` tokens) may go at once after a quiet
    spell; the sustained rate is then ``rpm - burst + 1`` a minute, so that no
    60-second window ever admits more than ``rpm`` (see :mod:`.gcra`).
    Defaults: a tenth of rpm, a quarter of tpm.

    >>> Limits(rpm=500).request_rate()
    Rate(limit=500, burst=50, window_us=60000000)
    """

    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None
    burst: int | None = None
    token_burst: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_in_flight", "burst", "token_burst"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1 or None, got {value!r}")
        self.request_rate()
        self.token_rate()  # burst > limit fails here, at configuration time

    def request_rate(self) -> Rate | None:
        if self.rpm is None:
            return None
        return Rate.per_minute(self.rpm, self.burst or max(1, self.rpm // 10))

    def token_rate(self) -> Rate | None:
        if self.tpm is None:
            return None
        return Rate.per_minute(self.tpm, self.token_burst or max(1, self.tpm // 4))


class Check(NamedTuple):
    """Whether a request could start now, without reserving anything."""

    wait: float
    """Seconds until the time-based limits (buckets, cooldown, provider budget) allow it."""
    slot_free: bool
    """False when only a release can help (max_in_flight reached)."""


@dataclass(slots=True)
class _ProviderBudget:
    """What the provider last said is left: ``left`` at ``at``, refilling until ``full_at``.

    The refill is linear (providers' buckets refill continuously); without a
    known limit nothing is assumed to refill before ``full_at``.
    """

    left: float
    at: float
    full_at: float
    per_second: float

    def wait(self, need: float, now: float) -> float:
        if now >= self.full_at:
            return 0.0
        short = need - (self.left + self.per_second * (now - self.at))
        if short <= 0:
            return 0.0
        if self.per_second > 0:
            return min(short / self.per_second, self.full_at - now)
        return self.full_at - now


def _budget(
    left: int | None, reset_in: float | None, limit: int | None, now: float
) -> _ProviderBudget | None:
    if left is None or reset_in is None or reset_in <= 0:
        return None
    rate = (limit - left) / reset_in if limit is not None and limit > left else 0.0
    return _ProviderBudget(float(left), now, now + reset_in, rate)


class QuotaState:
    """Admission for one quota: GCRA buckets for requests and tokens, slots, cooldown.

    ``try_admit`` reserves one request, the estimated tokens and a slot; the
    owner settles the tokens with the real usage and releases the slot.
    """

    def __init__(self, limits: Limits) -> None:
        self.in_flight = 0
        self.cooldown_until = -math.inf
        self.reserved_until: int | None = None
        """The token bucket's TAT right after the last admission: an opaque mark for
        :meth:`settle`, which then refunds only that reservation's own slot."""
        self._req_tat = NEVER
        self._tok_tat = NEVER
        self._req_budget: _ProviderBudget | None = None
        self._tok_budget: _ProviderBudget | None = None
        self._req_rate: Rate | None = None
        self._tok_rate: Rate | None = None
        self.reconfigure(limits)

    def reconfigure(self, limits: Limits) -> None:
        """New limits; reservations and slots already taken stay counted."""
        self.limits = limits
        req, tok = limits.request_rate(), limits.token_rate()
        self._req_tat = _rescale(self._req_tat, self._req_rate, req)
        self._tok_tat = _rescale(self._tok_tat, self._tok_rate, tok)
        self._req_rate, self._tok_rate = req, tok

    def check(self, tokens: int, now: float) -> Check:
        t = _us(now)
        waits = [self.cooldown_until - now]
        if self._req_rate:
            waits.append(gcra.decide(self._req_tat, 1, t, self._req_rate).wait / US)
        if self._tok_rate:
            waits.append(gcra.decide(self._tok_tat, tokens, t, self._tok_rate).wait / US)
        if self._req_budget:
            waits.append(self._req_budget.wait(1, now))
        if self._tok_budget:
            waits.append(self._tok_budget.wait(tokens, now))
        free = self.limits.max_in_flight is None or self.in_flight < self.limits.max_in_flight
        return Check(max(0.0, *waits), free)

    def try_admit(self, tokens: int, now: float) -> float:
        """0.0: admitted (one request, ``tokens`` tokens, one slot reserved); else seconds
        until it could be (``math.inf``: only when a slot is released); nothing reserved."""
        verdict = self.check(tokens, now)
        if verdict.wait > 0:
            return verdict.wait
        if not verdict.slot_free:
            return math.inf
        self.commit(tokens, now)
        return 0.0

    def commit(self, tokens: int, now: float) -> None:
        """Reserve unconditionally: for an owner that has just checked this and others."""
        t = _us(now)
        if self._req_rate:
            self._req_tat = gcra.decide(self._req_tat, 1, t, self._req_rate).tat
        if self._tok_rate:
            self._tok_tat = gcra.decide(self._tok_tat, tokens, t, self._tok_rate).tat
            self.reserved_until = self._tok_tat
        if self._req_budget:
            self._req_budget.left -= 1
        if self._tok_budget:
            self._tok_budget.left -= tokens
        self.in_flight += 1

    def settle(
        self, reserved: int, actual: int, now: float, *, reserved_until: int | None = None
    ) -> None:
        """Correct a reservation with the real usage: charge the excess, refund the rest.

        With ``reserved_until`` (:attr:`reserved_until` right after the admission)
        a refund only returns that reservation's own slot, never capacity that has
        already drained; without it, whatever of the bucket still lies ahead.
        """
        if self._tok_rate is None or actual == reserved:
            return
        self._tok_tat = gcra.adjust(
            self._tok_tat, actual - reserved, _us(now), self._tok_rate, until=reserved_until
        )

    def release(self) -> None:
        """A slot back (never below zero, so a double release cannot mint slots)."""
        self.in_flight = max(0, self.in_flight - 1)

    def cool_down(self, until: float) -> None:
        """Nothing is admitted before ``until`` (a later cooldown never shortens one)."""
        self.cooldown_until = max(self.cooldown_until, until)

    def learn(
        self,
        remaining_requests: int | None,
        remaining_tokens: int | None,
        reset_in: float | None,
        now: float,
        *,
        tokens_reset_in: float | None = None,
        request_limit: int | None = None,
        token_limit: int | None = None,
    ) -> None:
        """Adopt the provider's own count: plan on no more than it says is left.

        ``reset_in`` is when the request budget is full again (and the token
        budget's, unless ``tokens_reset_in`` says otherwise); with the provider's
        limits the budget refills linearly until then, without them not at all.
        """
        req = _budget(remaining_requests, reset_in, request_limit, now)
        tok_reset = reset_in if tokens_reset_in is None else tokens_reset_in
        tok = _budget(remaining_tokens, tok_reset, token_limit, now)
        self._req_budget = req or self._req_budget
        self._tok_budget = tok or self._tok_budget

    def cooling_for(self, now: float) -> float:
        """Seconds before even a small request could go, by cooldown or the provider's count."""
        waits = [self.cooldown_until - now]
        if self._req_budget:
            waits.append(self._req_budget.wait(1, now))
        return max(0.0, *waits)

    def idle(self, now: float) -> bool:
        """Nothing reserved, in flight or remembered: safe to forget."""
        t = _us(now)
        return (
            self.in_flight == 0
            and self.cooling_for(now) == 0
            and (self._req_rate is None or self._req_tat <= self._req_rate.ticks(t))
            and (self._tok_rate is None or self._tok_tat <= self._tok_rate.ticks(t))
            and (self._tok_budget is None or self._tok_budget.full_at <= now)
        )


def _rescale(tat: int, old: Rate | None, new: Rate | None) -> int:
    """A TAT in the new rate's ticks (they are 1/sustained of a microsecond)."""
    if tat == NEVER or old is None or new is None:
        return NEVER
    return new.ticks(old.to_us(tat))


def _us(seconds: float) -> int:
    return round(seconds * US)
