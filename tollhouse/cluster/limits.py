"""Provider limits shared by every instance through Redis: the Redis :class:`SharedLimiter`.

Each admission is one :data:`~tollhouse.cluster.scripts.ADMIT` script: the
upstream's and the model's request and token GCRA buckets (numeric cost), the
in-flight lease sets, the cooldown, gone and open-circuit marks, decided and
charged atomically on the Redis server's clock. An in-flight slot is a member
of a sorted set scored by its expiry: :meth:`RedisLimiter.renew` pushes the
expiry of the slots this instance holds every third of the lease TTL (a long
stream keeps its slot), and a crashed instance's slots fall out within the TTL.

When Redis is down, admission falls back to *per-instance shares*: the same
sans-io :class:`QuotaState` with every limit divided by
``expected_instances``, so N instances together stay within the provider's
limit without talking to each other. Cooldown and circuit marks then stay
local (the Capacity gate keeps its own anyway).

>>> # limiter = RedisLimiter(state, lease_ttl_s=30, expected_instances=3)
>>> # limiter.configure("openai", Limits(rpm=500), {})
>>> # grant = await limiter.admit("openai", "gpt-4o", 1200)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tollhouse.capacity.gcra import US
from tollhouse.capacity.quota import Limits, QuotaState
from tollhouse.capacity.shared import RATE, SLOTS, Grant
from tollhouse.cluster import scripts
from tollhouse.cluster.client import RedisState, StateDown, decode
from tollhouse.tasks import spawn

log = logging.getLogger("tollhouse.cluster")

FEATURE = "limits"


def _args(limits: Limits | None) -> list[float]:
    """One quota's ADMIT arguments: intervals (µs per unit), bursts, max in flight."""
    if limits is None:
        return [0, 0, 0, 0, 0]
    req, tok = limits.request_rate(), limits.token_rate()
    return [
        req.window_us / req.sustained if req else 0,
        req.burst if req else 0,
        tok.window_us / tok.sustained if tok else 0,
        tok.burst if tok else 0,
        limits.max_in_flight or 0,
    ]


def share(limits: Limits, instances: int) -> Limits:
    """One instance's conservative share of ``limits`` (at least 1 of each)."""

    def part(value: int | None) -> int | None:
        return None if value is None else max(1, value // instances)

    rpm, tpm = part(limits.rpm), part(limits.tpm)
    burst = None if limits.burst is None or rpm is None else min(rpm, part(limits.burst) or 1)
    token_burst = (
        None
        if limits.token_burst is None or tpm is None
        else min(tpm, part(limits.token_burst) or 1)
    )
    return Limits(rpm, tpm, part(limits.max_in_flight), burst=burst, token_burst=token_burst)


@dataclass(frozen=True, slots=True)
class _Keys:
    admit: list[str]
    tokens: list[str]
    token_intervals: list[float]
    slots: list[str]


class RedisLimiter:
    """Admission decided in Redis for every instance alike; see the module docstring."""

    shared = True

    def __init__(
        self,
        state: RedisState,
        *,
        lease_ttl_s: float,
        expected_instances: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.lease_ttl_s = lease_ttl_s
        self.instances = expected_instances
        self.clock = clock
        self.limits: dict[str, Limits] = {}
        self.model_limits: dict[tuple[str, str], Limits] = {}
        self.held: dict[str, list[str]] = {}
        """Lease id → the lease sets it is in, for renewal."""
        self._shares: dict[tuple[str, str | None], QuotaState] = {}
        self._ids = itertools.count()
        self._instance = secrets.token_hex(6)
        self._admit = state.client.register_script(scripts.ADMIT)
        self._end_script = state.client.register_script(scripts.END)
        self._renew = state.client.register_script(scripts.RENEW)
        self._until = state.client.register_script(scripts.UNTIL)
        self._renewer: asyncio.Task[None] | None = None

    def configure(self, upstream: str, limits: Limits, per_model: Mapping[str, Limits]) -> None:
        self.limits[upstream] = limits
        for model, model_limits in per_model.items():
            self.model_limits[(upstream, model)] = model_limits
        for key in [k for k in self._shares if k[0] == upstream]:
            del self._shares[key]

    # -- admission
    async def admit(self, upstream: str, model: str, tokens: int) -> Grant:
        """Admitted with a hold on the shared buckets and slots, or the wait and why."""
        keys = self._keys(upstream, model)
        lease_id = f"{self._instance}:{next(self._ids)}"
        args: list[Any] = [
            *_args(self.limits.get(upstream)),
            *_args(self.model_limits.get((upstream, model))),
            tokens,
            lease_id,
            round(self.lease_ttl_s * US),
        ]
        try:
            admitted, wait_us, reason, *why = await self.state.run(
                FEATURE, lambda r: self._admit(keys=keys.admit, args=args, client=r)
            )
        except StateDown:
            return self._admit_share(upstream, model, tokens)
        if not admitted:
            return Grant(None, int(wait_us) / US, decode(reason), decode(why[0]) if why else "")
        if keys.slots:
            self.held[lease_id] = keys.slots
            self._start_renewer()
        return Grant(_RedisHold(self, lease_id, keys))

    def _keys(self, upstream: str, model: str) -> _Keys:
        k = self.state.key
        mine = self.model_limits.get((upstream, model))
        up = self.limits.get(upstream)
        quotas = [(up, ("q", upstream)), (mine, ("m", upstream, model))]
        admit = [k(*base, part) for _, base in quotas for part in ("req", "tok", "slots")]
        admit += [k("cool", upstream), k("cool", upstream, model)]
        admit += [k("gone", upstream, model), k("open", upstream), k("open", upstream, model)]
        tokens, intervals, slots = [], [], []
        for limits, base in quotas:
            rate = limits.token_rate() if limits else None
            if rate is not None:
                tokens.append(k(*base, "tok"))
                intervals.append(rate.window_us / rate.sustained)
            if limits is not None and limits.max_in_flight:
                slots.append(k(*base, "slots"))
        return _Keys(admit, tokens, intervals, slots)

    def _admit_share(self, upstream: str, model: str, tokens: int) -> Grant:
        """Redis is down: this instance's share of the limits, decided here."""
        now = self.clock()
        quotas = [self._share(upstream, None), self._share(upstream, model)]
        checks = [q.check(tokens, now) for q in quotas]
        wait = max(c.wait for c in checks)
        if wait > 0:
            return Grant(None, wait, RATE)
        if not all(c.slot_free for c in checks):
            return Grant(None, 0.0, SLOTS)
        for q in quotas:
            q.commit(tokens, now)
        return Grant(_ShareHold(quotas, self.clock))

    def _share(self, upstream: str, model: str | None) -> QuotaState:
        found = self._shares.get((upstream, model))
        if found is None:
            limits = (
                self.limits.get(upstream)
                if model is None
                else self.model_limits.get((upstream, model))
            )
            found = QuotaState(share(limits, self.instances) if limits else Limits())
            if len(self._shares) < 4096 or limits is not None:  # model names come from clients
                self._shares[(upstream, model)] = found
        return found

    # -- leases
    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = spawn(self._renew_forever(), name="tollhouse-lease-renewer")

    async def _renew_forever(self) -> None:
        while self.held:
            await asyncio.sleep(self.lease_ttl_s / 3)
            await self.renew()

    async def renew(self) -> None:
        """Push the expiry of every slot this instance holds (one script call)."""
        keys: list[str] = []
        args: list[Any] = [round(self.lease_ttl_s * US)]
        for lease_id, sets in list(self.held.items()):
            keys += sets
            args += [lease_id] * len(sets)
        if not keys:
            return
        # Redis down: the leases expire there, and the slots come back by themselves.
        await self.state.attempt(FEATURE, lambda r: self._renew(keys=keys, args=args, client=r))

    async def _end(
        self, lease_id: str, sets: Sequence[str], keys: _Keys | None, delta: int
    ) -> None:
        """A lease's end in one round trip: its token correction, its slots back.
        Redis down: the reservation stands (conservative) and the slots expire by themselves."""
        tokens = keys.tokens if keys is not None and delta else []
        intervals = keys.token_intervals if keys is not None and delta else []
        args: list[Any] = [delta, len(tokens), *intervals, lease_id]
        all_keys = [*tokens, *sets]
        await self.state.attempt(
            FEATURE, lambda r: self._end_script(keys=all_keys, args=args, client=r)
        )

    # -- marks every instance honours
    async def cool_down(self, upstream: str, model: str, seconds: float) -> None:
        await self._mark(self.state.key("cool", upstream, model), seconds)

    async def mark_gone(self, upstream: str, model: str, seconds: float) -> None:
        await self._mark(self.state.key("gone", upstream, model), seconds)

    async def open_circuit(
        self, upstream: str, seconds: float, *, model: str | None = None, reason: str = ""
    ) -> None:
        """The deployment's circuit (``model``) or the provider's ejection, for every instance."""
        key = self.state.key("open", upstream, *([] if model is None else [model]))
        await self._mark(key, seconds, reason[:200])

    async def reset(self, upstream: str, model: str | None) -> bool:
        """Delete the health marks (never ``block``: the kill switch of issue 25 lives
        beside them, keyed ``block:…``, and only its own command lifts it)."""
        k = self.state.key
        keys = (
            [k("open", upstream)]
            if model is None
            else [k(kind, upstream, model) for kind in ("open", "gone", "cool")]
        )
        found = await self.state.attempt(FEATURE, lambda r: r.delete(*keys))
        return bool(found)

    async def ejections(self) -> list[dict[str, Any]]:
        """Circuits open in the shared store (every instance's): provider, model, reason, until."""

        async def scan(r: Any) -> list[dict[str, Any]]:
            pattern = self.state.key("open", "*")
            found = []
            async for key in r.scan_iter(match=pattern, count=500):
                reason, ms = await r.get(key), await r.pttl(key)
                parts = decode(key)[len(self.state.key("open", "")) :].split(":", 1)
                found.append(
                    {
                        "provider": parts[0],
                        "model": parts[1] if len(parts) > 1 else None,
                        "reason": decode(reason) if reason else "",
                        "until": round(time.time() + max(ms, 0) / 1000, 3),
                    }
                )
            return found

        return await self.state.attempt(FEATURE, scan) or []

    async def _mark(self, key: str, seconds: float, value: str = "1") -> None:
        args: list[Any] = [round(seconds * US), value or "1"]
        # Redis down: the local gate keeps its own mark.
        await self.state.attempt(FEATURE, lambda r: self._until(keys=[key], args=args, client=r))

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        held, self.held = self.held, {}
        for lease_id, sets in held.items():
            await self._end(lease_id, sets, None, 0)


class _RedisHold:
    """A shared admission: a token correction before the release travels with it."""

    def __init__(self, limiter: RedisLimiter, lease_id: str, keys: _Keys) -> None:
        self.limiter, self.lease_id, self.keys = limiter, lease_id, keys
        self.delta = 0
        self.released = False

    def settle(self, reserved: int, actual: int) -> None:
        if not self.keys.tokens or actual == reserved:
            return
        if not self.released:
            self.delta += actual - reserved
            return
        spawn(self.limiter._end(self.lease_id, (), self.keys, actual - reserved))

    def release(self) -> None:
        self.released = True
        sets = self.limiter.held.pop(self.lease_id, None) or []
        if sets or self.delta:
            spawn(self.limiter._end(self.lease_id, sets, self.keys, self.delta))


class _ShareHold:
    def __init__(self, quotas: list[QuotaState], clock: Callable[[], float]) -> None:
        self.quotas, self.clock = quotas, clock

    def settle(self, reserved: int, actual: int) -> None:
        for q in self.quotas:
            q.settle(reserved, actual, self.clock())

    def release(self) -> None:
        for q in self.quotas:
            q.release()
