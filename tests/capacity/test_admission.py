"""Capacity, the async shell, on a virtual-time loop: ordering, counts and exact times."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable

import pytest

from tests.capacity.virtual_loop import VirtualTimeLoop, run_virtual
from tollhouse.capacity import Capacity, CapacityTimeout, ErrorClass, Lease, Limits

FAR = 10_000.0  # a deadline nobody reaches


def capacity(**kwargs: object) -> Capacity:
    return Capacity(clock=asyncio.get_running_loop().time, **kwargs)  # type: ignore[arg-type]


def now() -> float:
    return asyncio.get_running_loop().time()


async def settle_tasks() -> None:
    """Let every ready task run (no virtual time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


def spawn(coro: Awaitable[Lease]) -> asyncio.Task[Lease]:
    return asyncio.ensure_future(coro)


def test_free_capacity_is_granted_at_once() -> None:
    async def main() -> None:
        cap = capacity()
        lease = await cap.acquire("openai", "gpt-4o", "acme", 100, deadline=0.0)
        assert lease.waited == 0.0 and now() == 0.0
        assert cap.stats()["openai"]["in_flight"] == 1
        lease.release(None)
        lease.release(None)  # idempotent
        assert cap.stats()["openai"]["in_flight"] == 0

    run_virtual(main())


def test_third_acquire_waits_for_a_release() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(max_in_flight=2))
        first = await cap.acquire("openai", "m", "p", 1, FAR)
        await cap.acquire("openai", "m", "p", 1, FAR)
        third = spawn(cap.acquire("openai", "m", "p", 1, FAR))
        await asyncio.sleep(5)
        assert not third.done()
        assert cap.stats()["openai"]["queue_depth"] == 1
        first.release(None)
        lease = await third
        assert now() == 5.0 and lease.waited == 5.0
        stats = cap.stats()["openai"]
        assert stats["waits"] == {"count": 1, "seconds": 5.0}
        assert stats["in_flight"] == 2 and stats["queue_depth"] == 0

    run_virtual(main())


def test_requests_per_minute_are_paced_exactly() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(rpm=60, burst=1))
        starts = []

        async def one() -> None:
            lease = await cap.acquire("openai", "m", "p", 0, FAR)
            starts.append(now())
            lease.release(None)

        await asyncio.gather(*(one() for _ in range(4)))
        assert starts == [0.0, 1.0, 2.0, 3.0]
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop) and loop.jumps == 3  # one wake per start

    run_virtual(main())


def test_an_impossible_deadline_fails_at_once() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(rpm=60, burst=1))
        await cap.acquire("openai", "m", "p", 0, FAR)
        with pytest.raises(CapacityTimeout) as caught:
            await cap.acquire("openai", "m", "p", 0, deadline=0.5)  # the next slot is at 1 s
        assert now() == 0.0 and caught.value.retry_after == 1.0
        lease = await cap.acquire("openai", "m", "p", 0, deadline=1.0)  # exactly in time
        assert now() == 1.0 and lease.waited == 1.0

    run_virtual(main())


def test_a_passed_deadline_fails_at_once_when_blocked() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(max_in_flight=1))
        await cap.acquire("openai", "m", "p", 0, FAR)
        with pytest.raises(CapacityTimeout):
            await cap.acquire("openai", "m", "p", 0, deadline=-1.0)
        assert now() == 0.0 and cap.stats()["openai"]["queue_depth"] == 0

    run_virtual(main())


def test_waiting_past_the_deadline_times_out_then() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(max_in_flight=1))
        await cap.acquire("openai", "m", "p", 0, FAR)
        with pytest.raises(CapacityTimeout) as caught:
            await cap.acquire("openai", "m", "p", 0, deadline=7.0)
        assert now() == 7.0 and caught.value.retry_after > 0
        assert cap.stats()["openai"]["queue_depth"] == 0
        assert cap.stats()["openai"]["timeouts"] == 1

    run_virtual(main())


def test_a_cancelled_waiter_frees_its_queue_slot_and_takes_nothing() -> None:
    async def main() -> None:
        cap = capacity(max_queue=1)
        cap.configure("openai", Limits(max_in_flight=1))
        held = await cap.acquire("openai", "m", "p", 0, FAR)
        waiter = spawn(cap.acquire("openai", "m", "p", 0, FAR))
        await settle_tasks()
        with pytest.raises(CapacityTimeout, match="already waiting"):
            await cap.acquire("openai", "m", "q", 0, FAR)  # the queue is full
        assert cap.unavailable("openai", "m") == "queue full"
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert cap.stats()["openai"]["queue_depth"] == 0
        assert cap.stats()["openai"]["in_flight"] == 1  # released nothing it didn't take
        late = spawn(cap.acquire("openai", "m", "q", 0, FAR))  # room again
        await settle_tasks()
        held.release(None)
        assert (await late).waited == 0.0

    run_virtual(main())


def test_a_waiter_cancelled_just_as_it_was_admitted_hands_the_lease_back() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(max_in_flight=1, tpm=60_000, token_burst=10_000))
        held = await cap.acquire("openai", "m", "p", 0, FAR)
        waiter = spawn(cap.acquire("openai", "m", "p", 10_000, FAR))
        await settle_tasks()
        held.release(None)  # admits the waiter (its future is resolved)...
        waiter.cancel()  # ...but it is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert cap.stats()["openai"]["in_flight"] == 0
        lease = await cap.acquire("openai", "m", "p", 10_000, deadline=0.0)  # tokens came back
        assert lease.waited == 0.0

    run_virtual(main())


def test_floods_do_not_starve_other_projects() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(max_in_flight=1))
        held = await cap.acquire("openai", "m", "warmup", 0, FAR)
        order: list[str] = []

        async def one(project: str) -> None:
            lease = await cap.acquire("openai", "m", project, 0, FAR)
            order.append(project)
            await asyncio.sleep(1)
            lease.release(None)

        tasks = [spawn_none(one("flood")) for _ in range(100)]
        await settle_tasks()
        tasks += [spawn_none(one("calm")) for _ in range(5)]
        await settle_tasks()
        held.release(None)
        await asyncio.gather(*tasks)
        calm = [n for n, p in enumerate(order) if p == "calm"]
        assert len(calm) == 5 and max(calm) < 12

    run_virtual(main())


def spawn_none(coro: Awaitable[None]) -> asyncio.Future[None]:
    return asyncio.ensure_future(coro)


def test_weights_share_a_congested_upstream() -> None:
    async def main() -> None:
        cap = capacity(weights={"gold": 3.0})
        cap.configure("openai", Limits(max_in_flight=1))
        held = await cap.acquire("openai", "m", "x", 0, FAR)
        order: list[str] = []

        async def one(project: str) -> None:
            lease = await cap.acquire("openai", "m", project, 0, FAR)
            order.append(project)
            await asyncio.sleep(1)
            lease.release(None)

        tasks = [spawn_none(one(p)) for _ in range(60) for p in ("basic", "gold")]
        await settle_tasks()
        held.release(None)
        await asyncio.gather(*tasks)
        assert order[:40].count("gold") == 30

    run_virtual(main())


def test_no_minute_admits_more_than_500_through_the_shell() -> None:
    async def main() -> None:
        cap = capacity(max_queue=5000)
        cap.configure("openai", Limits(rpm=500))
        starts: list[float] = []

        async def one(n: int) -> None:
            await asyncio.sleep(n % 7)  # arrivals spread over a few seconds
            lease = await cap.acquire("openai", "m", f"p{n % 5}", 0, FAR)
            starts.append(now())
            await asyncio.sleep(n % 3)
            lease.release(None)

        await asyncio.gather(*(one(n) for n in range(3000)))
        assert len(starts) == 3000
        # The limiter reads the clock in whole microseconds; so does this check (the
        # virtual loop's float sums put 60.000000 s at 59.99999999999998).
        ticks = sorted(round(t * 1_000_000) for t in starts)
        lo = 0
        for hi, t in enumerate(ticks):
            while ticks[lo] <= t - 60_000_000:
                lo += 1
            assert hi - lo + 1 <= 500
        # and no slower than needed: a burst of 50, then 451 a minute without a gap
        assert starts[-1] == pytest.approx(60 * 2950 / 451, abs=1e-3)
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        assert loop.jumps <= 2 * 3000  # woken per admission or release, never polling

    run_virtual(main())


def test_a_429_cools_the_model_down() -> None:
    async def main() -> None:
        cap = capacity(default_cooldown=10.0)
        body = json.dumps({"type": "error", "error": {"type": "rate_limit_error"}}).encode()
        hint = cap.observe("anthropic", "claude", 429, {"retry-after": "20"}, body)
        assert hint == 20.0
        assert cap.unavailable("anthropic", "claude") == "cooling down 20.0s"
        assert cap.unavailable("anthropic", "other-model") is None
        stats = cap.stats()["anthropic"]
        assert stats["rate_limited_received"] == 1 and stats["cooling_down_until"] == 20.0
        with pytest.raises(CapacityTimeout) as caught:
            await cap.acquire("anthropic", "claude", "p", 0, deadline=5.0)
        assert caught.value.retry_after == 20.0 and now() == 0.0
        lease = await cap.acquire("anthropic", "claude", "p", 0, FAR)
        assert now() == 20.0 and lease.waited == 20.0

    run_virtual(main())


def test_a_429_without_a_hint_uses_the_default_cooldown() -> None:
    async def main() -> None:
        cap = capacity(default_cooldown=10.0)
        body = b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}'
        assert cap.observe("vertex", "gemini", 429, {}, body) is None
        assert cap.unavailable("vertex", "gemini") == "cooling down 10.0s"

    run_virtual(main())


def test_no_quota_is_not_a_rate_limit() -> None:
    async def main() -> None:
        cap = capacity()
        body = b'{"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}'
        cap.observe("openai", "m", 429, {"retry-after": "5"}, body)
        assert cap.unavailable("openai", "m") is None
        assert cap.stats()["openai"]["rate_limited_received"] == 0

    run_virtual(main())


def test_observe_learns_what_the_provider_says_is_left() -> None:
    async def main() -> None:
        cap = capacity()
        headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
        assert cap.observe("openai", "m", 200, headers, None) == 2.0
        lease = await cap.acquire("openai", "m", "p", 0, FAR)
        assert now() == 2.0 and lease.waited == 2.0

    run_virtual(main())


def circuit(cap: Capacity, upstream: str, model: str | None) -> str:
    """A deployment's circuit (or, model None, the provider's ejection) as reported."""
    for e in cap.ejections():
        if (e["provider"], e["model"]) == (upstream, model):
            return str(e["state"])
    return "closed"


def test_breaker_opens_probes_and_closes() -> None:
    async def main() -> None:
        cap = capacity(breaker_failures=2, breaker_reset=30.0)
        for _ in range(2):
            (await cap.acquire("up", "m", "p", 0, FAR)).release(ErrorClass.SERVER)
        assert cap.unavailable("up", "m") == "circuit open (server) for 30s more"
        assert circuit(cap, "up", "m") == "open"
        assert cap.stats()["up"]["breaker"] == "closed"  # the provider's: one model proves nothing
        assert cap.unavailable("up", "sibling") is None
        with pytest.raises(CapacityTimeout):
            await cap.acquire("up", "m", "p", 0, deadline=10.0)  # decided at once
        assert now() == 0.0
        probe = await cap.acquire("up", "m", "p", 0, FAR)
        assert now() == 30.0 and probe.probe
        second = spawn(cap.acquire("up", "m", "p", 0, FAR))
        await asyncio.sleep(3)
        assert not second.done()  # one probe at a time
        assert cap.unavailable("up", "m") == "circuit half-open, probe in flight"
        probe.release(None)
        assert not (await second).probe and now() == 33.0
        assert circuit(cap, "up", "m") == "closed"

    run_virtual(main())


def test_rate_limits_and_client_errors_do_not_trip_the_breaker() -> None:
    async def main() -> None:
        cap = capacity(breaker_failures=2)
        for outcome in [ErrorClass.RATE_LIMIT, ErrorClass.CLIENT, ErrorClass.MODEL_GONE] * 3:
            (await cap.acquire("up", "m", "p", 0, FAR)).release(outcome)
        assert circuit(cap, "up", "m") == "closed"
        for outcome in [ErrorClass.TIMEOUT, ErrorClass.CONNECTION]:
            (await cap.acquire("up", "m", "p", 0, FAR)).release(outcome)
        assert circuit(cap, "up", "m") == "open"

    run_virtual(main())


def test_an_abandoned_probe_lets_the_next_one_through() -> None:
    async def main() -> None:
        cap = capacity(breaker_failures=1, breaker_reset=5.0)
        (await cap.acquire("up", "m", "p", 0, FAR)).release(ErrorClass.OVERLOADED)
        probe = await cap.acquire("up", "m", "p", 0, FAR)
        waiter = spawn(cap.acquire("up", "m", "p", 0, FAR))
        await settle_tasks()
        probe.abandon()
        assert (await waiter).probe and now() == 5.0

    run_virtual(main())


def test_mark_gone_warns_once() -> None:
    async def main() -> None:
        cap = capacity()
        assert cap.mark_gone("openai", "gpt-old", 600.0)
        assert not cap.mark_gone("openai", "gpt-old", 600.0)
        assert cap.unavailable("openai", "gpt-old") == "model gone"
        assert cap.unavailable("openai", "gpt-new") is None
        assert cap.stats()["openai"]["gone"] == ["gpt-old"]
        await asyncio.sleep(600)
        assert cap.unavailable("openai", "gpt-old") is None
        assert cap.mark_gone("openai", "gpt-old", 600.0)  # gone again: warn again

    run_virtual(main())


def test_a_blocked_model_does_not_hold_up_other_models() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(max_in_flight=10), {"slow": Limits(max_in_flight=1)})
        await cap.acquire("openai", "slow", "p", 0, FAR)
        waiting = spawn(cap.acquire("openai", "slow", "p", 0, FAR))
        await settle_tasks()
        other = await cap.acquire("openai", "fast", "p", 0, FAR)  # queued behind, yet free
        assert other.waited == 0.0 and not waiting.done()
        waiting.cancel()

    run_virtual(main())


def test_a_big_request_is_not_overtaken_for_ever_by_small_ones() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(tpm=60_000, token_burst=10_000))  # 50_001 a minute
        await cap.acquire("openai", "m", "p", 10_000, FAR)  # the bucket is full
        order: list[str] = []

        async def one(name: str, tokens: int) -> None:
            await cap.acquire("openai", "m", name, tokens, FAR)
            order.append(name)

        big = spawn_none(one("big", 9_000))
        await settle_tasks()
        small = spawn_none(one("small", 10))
        await asyncio.gather(big, small)
        assert order == ["big", "small"]

    run_virtual(main())


def test_settling_a_refund_wakes_waiters() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(tpm=60_000, token_burst=10_000))
        first = await cap.acquire("openai", "m", "p", 10_000, FAR)
        second = spawn(cap.acquire("openai", "m", "p", 5_000, FAR))
        await settle_tasks()
        assert not second.done()
        first.settle(1_000)  # it used far less than reserved
        assert (await second).waited == 0.0 and now() == 0.0

    run_virtual(main())


def test_settling_a_charge_delays_the_next() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(tpm=60_000, token_burst=10_000))
        first = await cap.acquire("openai", "m", "p", 1_000, FAR)
        first.settle(10_000)
        lease = await cap.acquire("openai", "m", "p", 1_000, FAR)
        assert lease.waited > 1.0

    run_virtual(main())


def test_close_fails_waiters_and_later_acquires() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(max_in_flight=1))
        await cap.acquire("openai", "m", "p", 0, FAR)
        waiter = spawn(cap.acquire("openai", "m", "p", 0, FAR))
        await settle_tasks()
        await cap.close()
        with pytest.raises(CapacityTimeout, match="shutting down"):
            await waiter
        with pytest.raises(CapacityTimeout, match="shutting down"):
            await cap.acquire("openai", "m", "p", 0, FAR)

    run_virtual(main())


def test_stats_shape() -> None:
    async def main() -> None:
        cap = capacity()
        cap.configure("openai", Limits(rpm=100))
        lease = await cap.acquire("openai", "gpt-4o", "p", 10, FAR)
        stats = cap.stats()["openai"]
        assert set(stats) >= {
            "in_flight",
            "queue_depth",
            "waits",
            "rate_limited_received",
            "breaker",
            "cooling_down_until",
        }
        assert stats["models"] == {"gpt-4o": {"in_flight": 1, "cooling_for": 0.0}}
        lease.release(None)
        json.dumps(cap.stats())  # plain data, ready for a dashboard

    run_virtual(main())


def test_on_a_real_loop_with_the_default_clock() -> None:
    async def main() -> list[int]:
        cap = Capacity()
        cap.configure("local", Limits(max_in_flight=1))
        order: list[int] = []

        async def one(n: int) -> None:
            lease = await cap.acquire("local", "m", "p", 0, deadline=cap.clock() + 30)
            order.append(n)
            await asyncio.sleep(0.001)
            lease.release(None)

        await asyncio.gather(*(one(n) for n in range(5)))
        await cap.close()
        return order

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_a_sick_model_opens_its_own_circuit_and_its_siblings_keep_going() -> None:
    async def main() -> None:
        cap = capacity(breaker_failures=1, breaker_reset=30.0)
        (await cap.acquire("up", "sick", "p", 0, FAR)).release(ErrorClass.OVERLOADED)
        assert circuit(cap, "up", "sick") == "open"
        sibling = await cap.acquire("up", "fine", "p", 0, FAR)
        assert now() == 0.0 and not sibling.probe  # at once: nothing of the sick one's
        sibling.release(None)
        probe = await cap.acquire("up", "sick", "p", 0, FAR)
        assert now() == 30.0 and probe.probe
        probe.release(None)  # recovered: re-admitted
        assert cap.ejections() == []

    run_virtual(main())


def test_provider_wide_evidence_ejects_every_model_then_one_probe_readmits() -> None:
    async def main() -> None:
        cap = capacity(breaker_failures=5, breaker_reset=10.0)
        lease = await cap.acquire("up", "a", "p", 0, FAR)
        lease.release(ErrorClass.CONNECTION, provider_down="no connection")
        assert cap.unavailable("up", "b") == "provider ejected (no connection) for 10s more"
        assert circuit(cap, "up", None) == "open" and circuit(cap, "up", "a") == "closed"
        probe = await cap.acquire("up", "b", "p", 0, FAR)
        assert now() == 10.0 and probe.provider_probe
        assert cap.unavailable("up", "a") == "provider ejected, probe in flight"
        probe.release(ErrorClass.OVERLOADED)  # it answered: the provider is back
        assert circuit(cap, "up", None) == "closed"

    run_virtual(main())


def test_n_distinct_models_failing_eject_the_provider() -> None:
    async def main() -> None:
        cap = capacity(breaker_failures=1, provider_models=2)
        (await cap.acquire("up", "a", "p", 0, FAR)).release(ErrorClass.SERVER)
        (await cap.acquire("up", "a2", "p", 0, FAR)).release(ErrorClass.RATE_LIMIT)
        assert circuit(cap, "up", None) == "closed"
        (await cap.acquire("up", "b", "p", 0, FAR)).release(ErrorClass.TIMEOUT)
        assert circuit(cap, "up", None) == "open"
        assert cap.ejections()[0]["reason"] == "2 models failing: a, b"

    run_virtual(main())


def test_reset_clears_a_deployment_by_hand() -> None:
    async def main() -> None:
        cap = capacity(breaker_failures=1)
        (await cap.acquire("up", "m", "p", 0, FAR)).release(ErrorClass.SERVER)
        cap.mark_gone("up", "old", 600.0)
        cap.observe("up", "hot", 429, {"retry-after": "60"}, None)
        assert await cap.reset("up", "m") and await cap.reset("up", "old")
        assert await cap.reset("up", "hot")
        assert not await cap.reset("up", "m")  # nothing left to clear
        for model in ("m", "old", "hot"):
            assert cap.unavailable("up", model) is None

    run_virtual(main())
