"""The async shell: requests wait here, fairly and boundedly, until an upstream has room.

Decisions are the sans-io cores' (:class:`QuotaState`, :class:`CircuitBreaker`,
:class:`FairQueue`); this module only keeps their state per upstream, parks
waiters on futures, and wakes them with one timer per upstream (set to the
computed admit time) or when a lease is released. It never polls.

>>> # capacity = Capacity()
>>> # capacity.configure("openai", Limits(rpm=500, tpm=200_000))
>>> # lease = await capacity.acquire("openai", "gpt-4o", "acme", 1200, deadline=now + 60)
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tollhouse.capacity.breaker import CLOSED, OPEN, CircuitBreaker
from tollhouse.capacity.classify import ErrorClass, classify
from tollhouse.capacity.fairqueue import FairQueue
from tollhouse.capacity.hints import parse_rate_limits, retry_hint
from tollhouse.capacity.lease import Lease
from tollhouse.capacity.quota import Limits, QuotaState
from tollhouse.capacity.retry import RetryPolicy
from tollhouse.capacity.shared import (
    CIRCUIT,
    COOLDOWN,
    EJECTED,
    GONE,
    SLOTS,
    Grant,
    LocalLimiter,
    SharedHold,
    SharedLimiter,
)
from tollhouse.tasks import spawn

log = logging.getLogger("tollhouse.capacity")

MAX_MODELS = 1024
"""Per upstream, model states beyond this are pruned when idle (names come from clients)."""
UNKNOWN_WAIT = 1.0
"""retry_after when the wait can't be computed (only a release would tell)."""
SLOT_POLL = (0.02, 0.5)
"""A shared slot freed by another instance sends no signal: ask again after this long,
doubling from the first to the second figure."""


_SKIP = {GONE: "model gone", CIRCUIT: "circuit open", EJECTED: "provider ejected"}
"""Shared refusals to skip at once (never wait out): the attempt's ``skipped`` text."""


MIRROR_S = 1.0
"""Another instance's circuit is mirrored here this long at most, then asked again: a
reset by hand (which clears the shared store) reaches every instance within it."""


def _mirrored(grant: Grant) -> float:
    return min(grant.wait, MIRROR_S)


def _skip_text(grant: Grant) -> str:
    text = _SKIP.get(grant.reason, "capacity timeout")
    return f"{text} ({grant.why})" if grant.why else text


class CapacityTimeout(Exception):
    """The request could not start before its deadline (or the queue was full)."""

    def __init__(self, message: str, retry_after: float, skipped: str = "capacity timeout") -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.skipped = skipped
        """What the attempt's ledger row says (another instance may know the model is gone)."""

    @property
    def unhealthy(self) -> bool:
        """Skipped for its health (gone, circuit open, provider ejected), not for capacity:
        waiting would not help, so no Retry-After comes of it."""
        return self.skipped != "capacity timeout"


@dataclass(eq=False)
class _Waiter:
    model: str
    tokens: int
    deadline: float
    enqueued: float
    future: asyncio.Future[Lease]
    timer: asyncio.TimerHandle | None = None


class _Verdict(NamedTuple):
    """Whether a request could start now, split by what blocks it."""

    upstream_wait: float  # the upstream's buckets, cooldown, breaker: blocks everyone
    model_wait: float  # the model's own quota: blocks only that model's requests
    upstream_slot: bool  # a free upstream slot, and the breaker isn't awaiting its probe
    model_slot: bool

    @property
    def wait(self) -> float:
        return max(self.upstream_wait, self.model_wait)

    @property
    def ready(self) -> bool:
        return self.wait == 0 and self.upstream_slot and self.model_slot

    @property
    def upstream_blocked(self) -> bool:
        return self.upstream_wait > 0 or not self.upstream_slot


@dataclass
class _Counters:
    admitted: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    rate_limited_received: int = 0
    timeouts: int = 0
    queue_full: int = 0


@dataclass(eq=False)
class _SharedLine:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(eq=False)
class _Upstream:
    """Everything kept for one upstream."""

    name: str
    quota: QuotaState
    breaker: CircuitBreaker
    """The provider's own: opened only by provider-wide evidence (it ejects every model)."""
    queue: FairQueue[_Waiter]
    new_breaker: Callable[[], CircuitBreaker]
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    """One per deployment (this provider's model): a sick model ejects only itself."""
    models: dict[str, QuotaState] = field(default_factory=dict)
    configured: set[str] = field(default_factory=set)
    gone: dict[str, float] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    counters: _Counters = field(default_factory=_Counters)
    shared_lines: dict[str, _SharedLine] = field(default_factory=dict)
    """Per model, only the head of this instance's line asks the shared limiter, in the
    order the fair queue admitted them (a model waiting out its cooldown blocks no other)."""

    def model_quota(self, model: str, now: float) -> QuotaState:
        found = self.models.get(model)
        if found is None:
            if len(self.models) >= MAX_MODELS:
                self._prune(now)
            found = self.models[model] = QuotaState(Limits())
        return found

    def model_breaker(self, model: str) -> CircuitBreaker:
        found = self.breakers.get(model)
        if found is None:
            if len(self.breakers) >= MAX_MODELS:  # a closed one forgets nothing worth keeping
                for name, b in list(self.breakers.items()):
                    if b.state == CLOSED and not b.consecutive:
                        del self.breakers[name]
            found = self.breakers[model] = self.new_breaker()
        return found

    def failing(self) -> list[str]:
        """Models whose circuit is not closed (open, or probing)."""
        return sorted(name for name, b in self.breakers.items() if b.state != CLOSED)

    def _prune(self, now: float) -> None:
        for name, quota in list(self.models.items()):
            if name not in self.configured and quota.idle(now):
                del self.models[name]
        for name, until in list(self.gone.items()):
            if until <= now:
                del self.gone[name]


class Capacity:
    """Admission to upstreams under their limits: quotas, fair queueing, circuit breaking.

    One instance per gateway. ``clock`` must tick in seconds along with the event
    loop's timers (the default, ``time.monotonic``, is the loop's own clock);
    ``wall_clock`` reads providers' absolute reset times. ``shared`` is what
    several instances agree on (:mod:`.shared`); a request admitted here is
    then admitted there too before it starts.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        policy: RetryPolicy | None = None,
        default_cooldown: float = 10.0,
        breaker_failures: int = 5,
        breaker_reset: float = 30.0,
        provider_models: int = 3,
        weights: Mapping[str, float] | None = None,
        max_queue: int = 1000,
        wall_clock: Callable[[], float] = time.time,
        shared: SharedLimiter | None = None,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.policy = policy or RetryPolicy()
        self.default_cooldown = default_cooldown
        self.breaker_failures = breaker_failures
        self.breaker_reset = breaker_reset
        self.provider_models = provider_models
        """This many distinct models failing at once is provider-wide evidence."""
        self.weights = dict(weights or {})
        self.max_queue = max_queue
        self.shared: SharedLimiter = shared or LocalLimiter()
        self._upstreams: dict[str, _Upstream] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- configuration -------------------------------------------------------

    def configure(
        self, upstream: str, limits: Limits, per_model: Mapping[str, Limits] | None = None
    ) -> None:
        """Set an upstream's key limits and its models' own (unconfigured: no limits)."""
        up = self._upstream(upstream)
        up.quota.reconfigure(limits)
        now = self.clock()
        for model, model_limits in (per_model or {}).items():
            up.model_quota(model, now).reconfigure(model_limits)
            up.configured.add(model)
        self.shared.configure(upstream, limits, per_model or {})
        self._dispatch(up)

    def _upstream(self, name: str) -> _Upstream:
        up = self._upstreams.get(name)
        if up is None:
            provider = CircuitBreaker(failures=1, reset_after=self.breaker_reset)
            queue: FairQueue[_Waiter] = FairQueue(self.weights, max_depth=self.max_queue)
            up = self._upstreams[name] = _Upstream(
                name, QuotaState(Limits()), provider, queue, self._new_breaker
            )
        return up

    def _new_breaker(self) -> CircuitBreaker:
        return CircuitBreaker(failures=self.breaker_failures, reset_after=self.breaker_reset)

    # -- admission -------------------------------------------------------------

    async def acquire(
        self, upstream: str, model: str, project: str, tokens: int, deadline: float
    ) -> Lease:
        """Wait, in ``upstream``'s fair queue, until the call may start; its :class:`Lease`.

        Raises :class:`CapacityTimeout` when it cannot start before ``deadline``
        (absolute, on ``clock``): at once when the wait is already known to be
        longer, or when the queue is full. A cancelled waiter leaves the queue.
        """
        if self._closed:
            raise CapacityTimeout("tollhouse is shutting down", UNKNOWN_WAIT)
        self._loop = asyncio.get_running_loop()
        up, now, tokens = self._upstream(upstream), self.clock(), max(0, tokens)
        lease = self._try_now(up, model, tokens, now) if not up.queue else None
        if lease is None:
            waiter = self._enqueue(up, model, project, tokens, deadline, now)
            try:
                lease = await waiter.future
            except asyncio.CancelledError:
                self._forget(up, waiter)
                raise
        if self.shared.shared:
            await self._admit_shared(up, lease, deadline)
        return lease

    async def _admit_shared(self, up: _Upstream, lease: Lease, deadline: float) -> None:
        """Hold ``lease`` (admitted here) until the shared limiter admits it too, in line."""
        line = up.shared_lines.setdefault(lease.model, _SharedLine())
        line.users += 1
        try:
            async with asyncio.timeout(max(0.0, deadline - self.clock())), line.lock:
                lease.share(await self._shared_grant(up, lease, deadline))
        except TimeoutError:
            lease.abandon()
            up.counters.timeouts += 1
            raise CapacityTimeout(
                f"{up.name}/{lease.model}: no shared capacity before the deadline", UNKNOWN_WAIT
            ) from None
        except BaseException:
            lease.abandon()
            raise
        finally:
            line.users -= 1
            if not line.users:  # model names come from clients: keep no idle lines
                del up.shared_lines[lease.model]

    async def _shared_grant(self, up: _Upstream, lease: Lease, deadline: float) -> SharedHold:
        poll = SLOT_POLL[0]
        while True:
            grant = await self.shared.admit(up.name, lease.model, lease.tokens)
            if grant.hold is not None:
                return grant.hold
            self._mirror(up, lease.model, grant)
            wait = grant.wait
            if grant.reason == SLOTS:
                wait, poll = poll, min(poll * 2, SLOT_POLL[1])
            if grant.reason in _SKIP or self.clock() + wait > deadline:
                up.counters.timeouts += 1
                raise CapacityTimeout(
                    f"{up.name}/{lease.model}: no shared capacity ({grant.reason}) for {wait:.1f}s",
                    max(wait, UNKNOWN_WAIT) if grant.reason == SLOTS else wait,
                    _skip_text(grant),
                )
            up.counters.waits += 1
            up.counters.wait_seconds += wait
            await asyncio.sleep(wait)

    def _mirror(self, up: _Upstream, model: str, grant: Grant) -> None:
        """What another instance learned (a gone model, a cooldown) steers fallback here too."""
        now = self.clock()
        if grant.reason == GONE:
            up.gone[model] = max(up.gone.get(model, -math.inf), now + grant.wait)
        elif grant.reason == CIRCUIT:
            up.model_breaker(model).trip(now, grant.why or "open elsewhere", _mirrored(grant))
        elif grant.reason == EJECTED:
            up.breaker.trip(now, grant.why or "ejected elsewhere", _mirrored(grant))
        elif grant.reason == COOLDOWN:
            up.model_quota(model, now).cool_down(now + grant.wait)

    def _enqueue(
        self, up: _Upstream, model: str, project: str, tokens: int, deadline: float, now: float
    ) -> _Waiter:
        bound = self._verdict(up, model, tokens, now).wait
        if now + bound > deadline:
            up.counters.timeouts += 1
            raise CapacityTimeout(
                f"{up.name}/{model}: no capacity for {bound:.1f}s, beyond the deadline", bound
            )
        assert self._loop is not None
        waiter = _Waiter(model, tokens, deadline, now, self._loop.create_future())
        if not up.queue.push(project, waiter):
            up.counters.queue_full += 1
            raise CapacityTimeout(
                f"{up.name}: {len(up.queue)} requests already waiting", max(bound, UNKNOWN_WAIT)
            )
        waiter.timer = self._loop.call_later(max(0.0, deadline - now), self._expire, up, waiter)
        self._dispatch(up)
        if not waiter.future.done() and deadline <= now:
            self._drop(up, waiter)
            up.counters.timeouts += 1
            raise CapacityTimeout(f"{up.name}/{model}: the deadline has passed", UNKNOWN_WAIT)
        return waiter

    def _verdict(self, up: _Upstream, model: str, tokens: int, now: float) -> _Verdict:
        upstream = up.quota.check(tokens, now)
        mine = up.model_quota(model, now).check(tokens, now)
        ejected = up.breaker.wait(now)
        found = up.breakers.get(model)
        circuit = found.wait(now) if found is not None else 0.0
        return _Verdict(
            max(upstream.wait, 0.0 if math.isinf(ejected) else ejected),
            max(mine.wait, 0.0 if math.isinf(circuit) else circuit),
            upstream.slot_free and not math.isinf(ejected),
            mine.slot_free and not math.isinf(circuit),
        )

    def _try_now(self, up: _Upstream, model: str, tokens: int, now: float) -> Lease | None:
        if not self._verdict(up, model, tokens, now).ready:
            return None
        return self._admit(up, model, tokens, now, now)

    def _admit(
        self, up: _Upstream, model: str, tokens: int, now: float, enqueued: float
    ) -> Lease | None:
        """Reserve for a request whose verdict is ready; None if a breaker says no after all."""
        mine = up.model_breaker(model)
        probe, provider_probe = mine.state != CLOSED, up.breaker.state != CLOSED
        if not mine.allow(now):
            return None
        if not up.breaker.allow(now):
            if probe:
                mine.abandon()
            return None
        quotas = (up.quota, up.model_quota(model, now))
        for quota in quotas:
            quota.commit(tokens, now)
        waited = now - enqueued
        up.counters.admitted += 1
        if waited > 0:
            up.counters.waits += 1
            up.counters.wait_seconds += waited
        return Lease(
            upstream=up.name,
            model=model,
            tokens=tokens,
            waited=waited,
            quotas=quotas,
            breaker=mine,
            probe=probe,
            provider=up.breaker,
            provider_probe=provider_probe,
            clock=self.clock,
            wake=lambda: self._released(up, model),
        )

    def _released(self, up: _Upstream, model: str) -> None:
        mine = up.breakers.get(model)
        if mine is not None and mine.news:  # it has just opened
            mine.news = False
            log.warning(
                "%s/%s ejected for %.0f s: %s", up.name, model, self.breaker_reset, mine.reason
            )
            self._announce(up.name, model, mine)
            failing = up.failing()
            if len(failing) >= self.provider_models and up.breaker.state == CLOSED:
                why = f"{len(failing)} models failing: {', '.join(failing)}"
                up.breaker.trip(self.clock(), why)
        if up.breaker.news:
            up.breaker.news = False
            log.warning("provider %s ejected: %s", up.name, up.breaker.reason)
            self._announce(up.name, None, up.breaker)
        self._dispatch(up)

    def _announce(self, upstream: str, model: str | None, breaker: CircuitBreaker) -> None:
        """Tell the other instances (with shared state) that a circuit has just opened."""
        if self.shared.shared:
            left = max(0.0, breaker.until - self.clock())
            spawn(self.shared.open_circuit(upstream, left, model=model, reason=breaker.reason))

    def _dispatch(self, up: _Upstream) -> None:
        """Admit what can start now in fair order; set the timer for the next admit time.

        A waiter blocked by its model's own quota is skipped (others may use the
        upstream meanwhile); one blocked by the upstream stops the pass, so a big
        request is not overtaken for ever by small ones.
        """
        if up.timer is not None:
            up.timer.cancel()
            up.timer = None
        if not up.queue:
            return  # the common case: nobody waiting, nothing to plan
        now, next_at = self.clock(), math.inf
        served: list[tuple[_Waiter, Lease]] = []
        failed: list[tuple[_Waiter, float]] = []
        blocked_models: set[str] = set()
        for w in up.queue:
            if w.future.done() or w.model in blocked_models:
                continue
            v = self._verdict(up, w.model, w.tokens, now)
            lease = self._admit(up, w.model, w.tokens, now, w.enqueued) if v.ready else None
            if lease is not None:
                served.append((w, lease))
                continue
            if now + v.wait > w.deadline:  # known too late: say so now, not at the deadline
                failed.append((w, v.wait))
                continue
            if v.wait > 0:
                next_at = min(next_at, now + v.wait)
            if v.upstream_blocked:
                break
            blocked_models.add(w.model)
        self._settle_waiters(up, served, failed)
        if next_at < math.inf and self._loop is not None and not self._closed:
            up.timer = self._loop.call_later(next_at - now, self._dispatch, up)

    def _settle_waiters(
        self,
        up: _Upstream,
        served: list[tuple[_Waiter, Lease]],
        failed: list[tuple[_Waiter, float]],
    ) -> None:
        for w, lease in served:
            up.queue.take(w)
            self._cancel_timer(w)
            w.future.set_result(lease)
        for w, wait in failed:
            self._drop(up, w)
            up.counters.timeouts += 1
            w.future.set_exception(
                CapacityTimeout(f"{up.name}/{w.model}: no capacity for {wait:.1f}s", wait)
            )

    def _expire(self, up: _Upstream, w: _Waiter) -> None:
        """A waiter's deadline: one last look (its admit time may be exactly now), then fail."""
        w.timer = None
        self._dispatch(up)
        if w.future.done():
            return
        wait = self._verdict(up, w.model, w.tokens, self.clock()).wait
        self._drop(up, w)
        up.counters.timeouts += 1
        w.future.set_exception(
            CapacityTimeout(
                f"{up.name}/{w.model}: no capacity before the deadline", wait or UNKNOWN_WAIT
            )
        )
        self._dispatch(up)

    def _forget(self, up: _Upstream, w: _Waiter) -> None:
        """The waiting task was cancelled: leave the queue, or hand back a lease it never saw."""
        if w.future.done() and not w.future.cancelled() and w.future.exception() is None:
            w.future.result().abandon()
            return
        self._drop(up, w)
        self._dispatch(up)

    def _drop(self, up: _Upstream, w: _Waiter) -> None:
        up.queue.remove(w)
        self._cancel_timer(w)

    @staticmethod
    def _cancel_timer(w: _Waiter) -> None:
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None

    # -- learning from answers ---------------------------------------------------

    def observe(
        self,
        upstream: str,
        model: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> float | None:
        """Learn from every upstream answer; the provider's retry hint (seconds) if it gave one.

        Remaining/reset headers bound the model's plan; a 429 (a rate limit, not
        an exhausted quota) cools the model down for the hint or ``default_cooldown``.
        """
        up, now, wall = self._upstream(upstream), self.clock(), self.wall_clock()
        quota = up.model_quota(model, now)
        info = parse_rate_limits(headers, now=wall)
        if not info.empty:
            quota.learn(
                info.remaining_requests,
                info.remaining_tokens,
                info.requests_reset_in,
                now,
                tokens_reset_in=info.tokens_reset_in,
                request_limit=info.limit_requests,
                token_limit=info.limit_tokens,
            )
        # A success carries a hint only when a budget is used up: skip the parse otherwise.
        hinted = status >= 400 or info.remaining_requests == 0 or info.remaining_tokens == 0
        hint = retry_hint(status, headers, body, now=wall) if hinted else None
        if status == 429 and classify(status, body) is ErrorClass.RATE_LIMIT:
            up.counters.rate_limited_received += 1
            pause = self.default_cooldown if hint is None else hint
            quota.cool_down(now + pause)
            if self.shared.shared:
                spawn(self.shared.cool_down(upstream, model, pause))
        elif not info.empty:
            self._dispatch(up)  # a fresher count may allow more than the last one
        return hint

    def mark_gone(self, upstream: str, model: str, for_seconds: float) -> bool:
        """Skip ``model`` for a while (it answered 404); True the first time, to warn once."""
        up, now = self._upstream(upstream), self.clock()
        first = up.gone.get(model, -math.inf) <= now
        up.gone[model] = max(up.gone.get(model, -math.inf), now + for_seconds)
        if self.shared.shared and first:
            spawn(self.shared.mark_gone(upstream, model, for_seconds))
        return first

    def unavailable(self, upstream: str, model: str) -> str | None:
        """Why a fallback candidate should be skipped without waiting, or None."""
        up = self._upstreams.get(upstream)
        if up is None:
            return None
        now = self.clock()
        if up.gone.get(model, -math.inf) > now:
            return "model gone"
        ejected = up.breaker.wait(now)
        if ejected > 0:
            if math.isinf(ejected):
                return "provider ejected, probe in flight"
            return f"provider ejected ({up.breaker.reason}) for {ejected:.0f}s more"
        found = up.breakers.get(model)
        circuit = found.wait(now) if found is not None else 0.0
        if found is not None and circuit > 0:
            if math.isinf(circuit):
                return "circuit half-open, probe in flight"
            return f"circuit open ({found.reason}) for {circuit:.0f}s more"
        quota = up.models.get(model)
        cooling = max(up.quota.cooling_for(now), quota.cooling_for(now) if quota else 0.0)
        if cooling > 0:
            return f"cooling down {cooling:.1f}s"
        if len(up.queue) >= self.max_queue:
            return "queue full"
        return None

    # -- reporting and shutdown --------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Per upstream: in flight, queue depth, waits, 429s received, breaker, cooldowns."""
        now = self.clock()
        return {name: self._upstream_stats(up, now) for name, up in self._upstreams.items()}

    def _upstream_stats(self, up: _Upstream, now: float) -> dict[str, Any]:
        c = up.counters
        quotas = [up.quota, *up.models.values()]
        until = max((q.cooldown_until for q in quotas), default=-math.inf)
        return {
            "in_flight": up.quota.in_flight,
            "queue_depth": len(up.queue),
            "admitted": c.admitted,
            "waits": {"count": c.waits, "seconds": round(c.wait_seconds, 6)},
            "timeouts": c.timeouts,
            "queue_full": c.queue_full,
            "rate_limited_received": c.rate_limited_received,
            "breaker": up.breaker.state,
            "ejections": self._ejections(up, now),
            "cooling_down_until": until if until > now else None,
            "models": {
                name: {"in_flight": q.in_flight, "cooling_for": round(q.cooling_for(now), 3)}
                for name, q in up.models.items()
                if q.in_flight or q.cooling_for(now)
            },
            "gone": sorted(name for name, t in up.gone.items() if t > now),
        }

    def _ejections(self, up: _Upstream, now: float) -> list[dict[str, Any]]:
        """Open circuits, the provider's (model None) first: why, since and until (epoch s)."""
        to_wall = self.wall_clock() - now
        found: list[tuple[str | None, CircuitBreaker]] = []
        if up.breaker.state != CLOSED:
            found.append((None, up.breaker))
        found += [(m, up.breakers[m]) for m in up.failing()]
        return [
            {
                "provider": up.name,
                "model": model,
                "state": b.state,
                "reason": b.reason,
                "since": round(b.opened_at + to_wall, 3),
                "until": round(b.until + to_wall, 3) if b.state == OPEN else None,
            }
            for model, b in found
        ]

    def ejections(self) -> list[dict[str, Any]]:
        """Every ejected provider and deployment, with reason and since/until (wall clock)."""
        now = self.clock()
        return [e for up in self._upstreams.values() for e in self._ejections(up, now)]

    async def reset(self, upstream: str, model: str | None) -> bool:
        """Clear an ejection by hand: a deployment's circuit, gone mark and cooldown, or
        (``model`` None) the provider's ejection; here and in the shared store.

        Only health state is cleared: a kill switch (``models block``, issue 25) is an
        operator's decision, kept apart, and a reset never lifts it. True if anything was set.
        """
        up, now = self._upstreams.get(upstream), self.clock()
        found = False
        if up is not None and model is None:
            found = up.breaker.state != CLOSED
            up.breaker.reset()
        elif up is not None and model is not None:
            b, quota = up.breakers.pop(model, None), up.models.get(model)
            found = b is not None and b.state != CLOSED
            found = up.gone.pop(model, -math.inf) > now or found
            if quota is not None and quota.cooldown_until > now:
                quota.cooldown_until, found = -math.inf, True
        if self.shared.shared:
            found = await self.shared.reset(upstream, model) or found
        if up is not None:
            self._dispatch(up)
        return found

    async def close(self) -> None:
        """Cancel every timer and fail every waiter (shutdown). Later acquires fail at once."""
        self._closed = True
        await self.shared.close()
        for up in self._upstreams.values():
            if up.timer is not None:
                up.timer.cancel()
                up.timer = None
            while (w := up.queue.pop()) is not None:
                self._cancel_timer(w)
                if not w.future.done():
                    w.future.set_exception(
                        CapacityTimeout("tollhouse is shutting down", UNKNOWN_WAIT)
                    )
