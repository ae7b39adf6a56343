"""The Redis limiter against the real Redis: several limiters stand for several instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.cluster.conftest import REDIS_URL, PrivateRedis
from tollhouse.capacity import Capacity, CapacityTimeout, Limits
from tollhouse.capacity.shared import CIRCUIT, COOLDOWN, EJECTED, GONE, RATE, SLOTS, Grant
from tollhouse.cluster import RedisLimiter, RedisState
from tollhouse.cluster.limits import share
from tollhouse.settings import StateSettings

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiters(
    prefix: str, n: int, url: str = REDIS_URL, clock: Any = None, ttl: float = 30.0, **kw: Any
) -> list[RedisLimiter]:
    out = []
    for _ in range(n):
        state = RedisState.from_settings(StateSettings(url=url, key_prefix=prefix))
        if clock is not None:
            state.clock = clock
        out.append(RedisLimiter(state, lease_ttl_s=ttl, **kw))
    return out


async def drain() -> None:
    """Wait for the releases and settlements the holds spawned (not the lease renewer)."""
    me = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not me and "renewer" not in t.get_name()]
    await asyncio.gather(*pending)


def run(make: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(make())


async def closing(ls: list[RedisLimiter], body: Callable[[], Awaitable[T]]) -> T:
    try:
        return await body()
    finally:
        for lim in ls:
            await lim.close()
            await lim.state.close()


def test_instances_share_one_request_bucket(prefix: str) -> None:
    ls = limiters(prefix, 3)
    for lim in ls:
        lim.configure("openai", Limits(rpm=60, burst=3), {})

    spent: list[float] = []

    async def body() -> list[Grant]:
        began = time.monotonic()
        grants = [await ls[i % 3].admit("openai", "gpt-4o", 1) for i in range(4)]
        spent.append(time.monotonic() - began)  # a loaded box takes a while between admits
        return grants

    grants = run(lambda: closing(ls, body))
    assert [g.admitted for g in grants] == [True, True, True, False]  # one burst of 3, for all
    # 58 a minute sustained: the 4th waits a 58th of a minute, less the time the admits took.
    assert grants[3].reason == RATE and 60 / 58 - spent[0] <= grants[3].wait <= 60 / 58


def test_tokens_are_a_numeric_cost_and_settle_refunds(prefix: str) -> None:
    ls = limiters(prefix, 2)
    for lim in ls:
        lim.configure("openai", Limits(tpm=6000, token_burst=1000), {})

    async def body() -> list[bool]:
        big = await ls[0].admit("openai", "m", 900)
        refused = await ls[1].admit("openai", "m", 300)
        assert big.hold is not None
        big.hold.settle(900, 100)  # it used 100 tokens: 800 back, with the release
        big.hold.release()
        await drain()
        fits = await ls[1].admit("openai", "m", 300)
        return [big.admitted, refused.admitted, fits.admitted]

    assert run(lambda: closing(ls, body)) == [True, False, True]


def test_in_flight_slots_are_shared_and_released(prefix: str) -> None:
    ls = limiters(prefix, 2)
    for lim in ls:
        lim.configure("openai", Limits(max_in_flight=2), {"o3": Limits(max_in_flight=1)})

    async def body() -> list[Any]:
        a = await ls[0].admit("openai", "gpt-4o", 1)
        b = await ls[1].admit("openai", "o3", 1)
        c = await ls[1].admit("openai", "o3", 1)  # the model's one slot is taken
        d = await ls[1].admit("openai", "gpt-4o", 1)  # the upstream's two are
        assert a.hold is not None
        a.hold.release()
        await drain()
        e = await ls[1].admit("openai", "gpt-4o", 1)
        return [a.admitted, b.admitted, c.reason, d.reason, e.admitted]

    assert run(lambda: closing(ls, body)) == [True, True, SLOTS, SLOTS, True]


def test_a_held_lease_is_renewed_and_an_abandoned_one_expires(prefix: str) -> None:
    (lim,) = limiters(prefix, 1, ttl=0.1)
    lim.configure("openai", Limits(max_in_flight=1), {})
    key = prefix + "q:openai:slots"

    async def body() -> tuple[float, float, str, int]:
        held = await lim.admit("openai", "m", 1)
        assert held.admitted
        lease_id = next(iter(lim.held))
        before = await lim.state.client.zscore(key, lease_id)
        await lim.renew()
        after = await lim.state.client.zscore(key, lease_id)
        lim.held.clear()  # stop renewing, as if the instance had died
        refused = (await lim.admit("openai", "m", 1)).reason
        tries = 1
        while not (await lim.admit("openai", "m", 1)).admitted:  # the TTL has to pass
            tries += 1
            assert tries < 500, "the abandoned slot never came back"
            await asyncio.sleep(0.01)
        return before, after, refused, tries

    before, after, refused, tries = run(lambda: closing([lim], body))
    assert after > before  # renewal pushed the expiry, on the Redis server's clock
    assert refused == SLOTS and tries > 1  # held until its lease expired, then back


def test_cooldown_gone_and_circuit_marks_reach_every_instance(prefix: str) -> None:
    a, b = limiters(prefix, 2)
    for lim in (a, b):
        lim.configure("openai", Limits(), {})

    async def body() -> list[tuple[str, float]]:
        out = []
        await a.cool_down("openai", "gpt-4o", 5)
        out.append(await b.admit("openai", "gpt-4o", 1))
        await a.mark_gone("openai", "gpt-3", 600)
        out.append(await b.admit("openai", "gpt-3", 1))
        await a.open_circuit("xai", 30)
        out.append(await b.admit("xai", "grok", 1))
        await a.cool_down("openai", "gpt-4o", 1)  # a shorter cooldown never shortens one
        out.append(await b.admit("openai", "gpt-4o", 1))
        await a.open_circuit("openai", 20, model="sick", reason="overloaded")
        out.append(await b.admit("openai", "sick", 1))
        out.append(await b.admit("openai", "gpt-4o-mini", 1))  # its sibling: admitted
        return [(g.reason, g.wait) for g in out]

    got = run(lambda: closing([a, b], body))
    assert [r for r, _ in got] == [COOLDOWN, GONE, EJECTED, COOLDOWN, CIRCUIT, ""]
    assert 4 < got[0][1] <= 5 and 599 < got[1][1] <= 600 and 29 < got[2][1] <= 30
    assert got[3][1] > 1


def test_the_capacity_gate_waits_for_the_shared_limit(prefix: str) -> None:
    """Two gates, one Redis: the second waits for the bucket the first one drained."""
    ls = limiters(prefix, 2)
    gates = [Capacity(shared=lim) for lim in ls]
    for gate, lim in zip(gates, ls, strict=True):
        gate.configure("openai", Limits())  # nothing local: only the shared limit binds
        lim.configure("openai", Limits(rpm=600, burst=1), {})  # one every 0.1 s, for both

    async def body() -> str:
        loop = asyncio.get_running_loop()
        first = await gates[0].acquire("openai", "m", "p", 1, deadline=loop.time() + 5)
        second = await gates[1].acquire("openai", "m", "p", 1, deadline=loop.time() + 5)
        try:
            await gates[1].acquire("openai", "m", "p", 1, deadline=loop.time() + 0.02)
        except CapacityTimeout as exc:
            message = exc.message
        else:
            raise AssertionError("admitted beyond the shared rate")
        first.release(None)
        second.release(None)
        return message

    message = run(lambda: closing(ls, body))
    assert gates[1].stats()["openai"]["waits"]["count"] == 1  # it waited for the shared bucket
    assert gates[0].stats()["openai"]["waits"]["count"] == 0
    assert "no shared capacity (rate)" in message


def test_redis_down_falls_back_to_a_share_and_recovers(private_redis: PrivateRedis) -> None:
    clock = Clock()
    (lim,) = limiters("down:", 1, url=private_redis.url, clock=clock, expected_instances=3)
    lim.configure("openai", Limits(rpm=60, burst=6, max_in_flight=3), {})
    assert share(Limits(rpm=60, burst=6, max_in_flight=3), 3) == Limits(
        rpm=20, burst=2, max_in_flight=1
    )

    async def body() -> list[Any]:
        up = await lim.admit("openai", "m", 1)
        private_redis.kill()
        down = [await lim.admit("openai", "m", 1) for _ in range(3)]
        state_up = lim.state.up
        private_redis.start()
        clock.now += 2  # past retry_s: the next call tries Redis again
        back = await lim.admit("openai", "m", 1)
        return [up.admitted, [(g.admitted, g.reason) for g in down], state_up, back, lim.state]

    up, down, state_up, back, state = run(lambda: closing([lim], body))
    assert up
    # The share: 1 slot of 3, so the second request waits for the first to end.
    assert down == [(True, ""), (False, SLOTS), (False, SLOTS)]
    assert state_up is False and state.up is True and back.admitted
    assert state.outages == 1 and state.fallbacks["limits"] == 3
    names = {m.name: m for m in state.gauges()}
    assert names["tollhouse_state_up"].samples[0].value == 1.0


def test_a_refusing_redis_counts_as_down_not_as_a_500(prefix: str) -> None:
    """An error reply (here WRONGTYPE; in production OOM or READONLY) takes the fallback."""
    (lim,) = limiters(prefix, 1, expected_instances=2)
    lim.configure("openai", Limits(rpm=60, burst=2), {})

    async def body() -> tuple[Grant, bool]:
        await lim.state.client.lpush(prefix + "q:openai:req", "not a number")
        grant = await lim.admit("openai", "m", 1)
        return grant, lim.state.up

    grant, up = run(lambda: closing([lim], body))
    assert grant.admitted and up is False  # admitted on this instance's share
