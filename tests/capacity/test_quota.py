"""QuotaState: buckets, reservation and settlement, slots, cooldown, provider budgets."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from tollhouse.capacity import Limits, QuotaState

MINUTE_US = 60_000_000


def refill_s(tokens: int, sustained: int) -> float:
    """Seconds a bucket with ``sustained`` units a minute takes to drain ``tokens``."""
    return -(-tokens * MINUTE_US // sustained) / 1e6


def test_limits_validation_and_defaults() -> None:
    assert Limits().request_rate() is None and Limits().token_rate() is None
    rate = Limits(rpm=500).request_rate()
    assert rate is not None and (rate.burst, rate.sustained) == (50, 451)
    tokens = Limits(tpm=200_000).token_rate()
    assert tokens is not None and tokens.burst == 50_000
    five = Limits(rpm=5).request_rate()
    assert five is not None and five.burst == 1
    for bad in ({"rpm": 0}, {"tpm": -1}, {"max_in_flight": 0}, {"rpm": 10, "burst": 11}):
        with pytest.raises(ValueError):
            Limits(**bad)


def test_request_rate_exact_times() -> None:
    q = QuotaState(Limits(rpm=60, burst=1))
    assert q.try_admit(0, 0.0) == 0.0
    assert q.try_admit(0, 0.0) == 1.0
    assert q.try_admit(0, 0.25) == 0.75
    assert q.try_admit(0, 1.0) == 0.0
    assert q.in_flight == 2


def test_burst_then_steady() -> None:
    q = QuotaState(Limits(rpm=120, burst=4))  # sustained 117 a minute
    assert [q.try_admit(0, 0.0) for _ in range(4)] == [0.0] * 4
    wait = q.try_admit(0, 0.0)
    assert wait == refill_s(1, 117)
    assert q.try_admit(0, wait) == 0.0
    assert q.try_admit(0, wait) == pytest.approx(refill_s(1, 117), abs=1e-6)


def test_nothing_is_reserved_when_denied() -> None:
    q = QuotaState(Limits(rpm=60, burst=1, tpm=1000, max_in_flight=5))
    assert q.try_admit(100, 0.0) == 0.0
    for _ in range(10):
        assert q.try_admit(100, 0.0) > 0
    assert q.in_flight == 1
    assert q.try_admit(100, 1.0) == 0.0  # the denials cost nothing


def test_tpm_reservation() -> None:
    q = QuotaState(Limits(tpm=60_000, token_burst=10_000))  # sustained 50_001 a minute
    assert q.try_admit(10_000, 0.0) == 0.0
    assert q.try_admit(1000, 0.0) == refill_s(1000, 50_001)
    assert q.try_admit(1, 0.0) == refill_s(1, 50_001)


def test_settle_refunds_unused_tokens() -> None:
    q = QuotaState(Limits(tpm=60_000, token_burst=10_000))
    q.try_admit(10_000, 0.0)
    q.settle(10_000, 2_000, 0.0, reserved_until=q.reserved_until)
    assert q.try_admit(8_000, 0.0) == 0.0  # the 8000 unused came back
    assert q.try_admit(1, 0.0) > 0


def test_settle_charges_usage_beyond_the_reservation() -> None:
    q = QuotaState(Limits(tpm=60_000, token_burst=10_000))
    q.try_admit(1_000, 0.0)
    q.settle(1_000, 5_000, 0.0)
    assert q.try_admit(5_001, 0.0) == refill_s(1, 50_001)  # 5000 used, 5000 left in the burst
    assert q.try_admit(5_000, 0.0) == 0.0


def test_a_refund_returns_only_its_own_slot_not_drained_time() -> None:
    limits = Limits(tpm=60_000, token_burst=10_000)
    with_mark, without = QuotaState(limits), QuotaState(limits)
    for q in (with_mark, without):
        q.try_admit(5_000, 0.0)
        mark = q.reserved_until
        q.try_admit(5_000, 0.0)  # a second reservation stacked behind the first
        q.settle(5_000, 0, 7.0, reserved_until=mark if q is with_mark else None)
    # At 7 s the first reservation's slot (6 s long) has drained: nothing to give back,
    # while the mark-less refund wrongly hands out the second reservation's time.
    assert without.check(10_000, 7.0).wait == 0.0
    assert with_mark.check(10_000, 7.0).wait == pytest.approx(5.0, abs=1e-3)


def test_in_flight_slots() -> None:
    q = QuotaState(Limits(max_in_flight=2))
    assert q.try_admit(10, 0.0) == 0.0
    assert q.try_admit(10, 0.0) == 0.0
    assert q.try_admit(10, 0.0) == math.inf  # only a release helps
    assert q.check(10, 0.0).slot_free is False
    q.release()
    assert q.try_admit(10, 0.0) == 0.0
    for _ in range(5):
        q.release()
    assert q.in_flight == 0  # never negative: double releases can't mint slots


def test_cooldown() -> None:
    q = QuotaState(Limits())
    q.cool_down(10.0)
    assert q.try_admit(1, 4.0) == 6.0
    q.cool_down(5.0)  # a shorter one never shortens it
    assert q.cooling_for(4.0) == 6.0
    assert q.try_admit(1, 10.0) == 0.0


def test_learn_zero_left_blocks_until_the_reset() -> None:
    q = QuotaState(Limits())  # nothing configured: the provider's word is all we have
    q.learn(0, None, 2.0, now=100.0)
    assert q.try_admit(1, 100.0) == 2.0
    assert q.cooling_for(101.0) == 1.0
    assert q.try_admit(1, 102.0) == 0.0


def test_learn_counts_down_what_is_left() -> None:
    q = QuotaState(Limits())
    q.learn(3, None, 10.0, now=0.0)
    assert [q.try_admit(1, 0.0) for _ in range(3)] == [0.0] * 3
    assert q.try_admit(1, 0.0) == 10.0


def test_learn_with_the_limit_refills_linearly() -> None:
    q = QuotaState(Limits())
    q.learn(0, None, 10.0, now=0.0, request_limit=100)  # 100 back in 10 s: 10 a second
    assert q.try_admit(1, 0.0) == pytest.approx(0.1)
    assert q.try_admit(1, 0.1) == 0.0


def test_learn_tokens() -> None:
    q = QuotaState(Limits())
    q.learn(None, 500, 1.0, now=0.0, tokens_reset_in=5.0)
    assert q.try_admit(1000, 0.0) == 5.0
    assert q.try_admit(400, 0.0) == 0.0
    assert q.try_admit(200, 0.0) == 5.0


def test_learn_never_loosens_configured_limits() -> None:
    q = QuotaState(Limits(rpm=60, burst=1))
    q.learn(10_000, 10_000_000, 60.0, now=0.0)
    assert q.try_admit(1, 0.0) == 0.0
    assert q.try_admit(1, 0.0) == 1.0


def test_learn_without_a_reset_is_ignored() -> None:
    q = QuotaState(Limits())
    q.learn(0, 0, None, now=0.0)
    assert q.try_admit(1, 0.0) == 0.0


def test_reconfigure_keeps_what_is_reserved() -> None:
    q = QuotaState(Limits(rpm=60, burst=1))
    q.try_admit(0, 0.0)
    q.reconfigure(Limits(rpm=120, burst=1, max_in_flight=1))
    assert q.in_flight == 1
    assert q.try_admit(0, 0.5) == 0.5  # the old reservation still runs to 1 s
    assert q.try_admit(0, 1.0) == math.inf  # and its slot is still taken
    q.release()
    assert q.try_admit(0, 1.0) == 0.0


def test_idle() -> None:
    q = QuotaState(Limits(rpm=60, burst=1))
    assert q.idle(0.0)
    q.try_admit(0, 0.0)
    assert not q.idle(0.5)
    q.release()
    assert not q.idle(0.5) and q.idle(1.0)


def test_no_minute_admits_more_than_500_under_concurrent_demand() -> None:
    """Thousands of requests from hundreds of callers, a fake clock, slots and all."""
    q = QuotaState(Limits(rpm=500, max_in_flight=64))
    rng = random.Random(11)
    heap = [(rng.uniform(0, 2), n) for n in range(100)]  # 100 callers, 30 requests each
    heapq.heapify(heap)
    left, finishing, admitted = [30] * 100, list[float](), list[float]()
    while heap:
        now, n = heapq.heappop(heap)
        while finishing and finishing[0] <= now:  # calls that ended release their slot
            heapq.heappop(finishing)
            q.release()
        wait = q.try_admit(0, now)
        if wait:
            retry = finishing[0] if math.isinf(wait) else now + wait
            heapq.heappush(heap, (retry, n))
            continue
        admitted.append(now)
        heapq.heappush(finishing, now + rng.uniform(0.05, 2))
        assert len(finishing) == q.in_flight <= 64
        left[n] -= 1
        if left[n]:
            heapq.heappush(heap, (now + rng.uniform(0, 1), n))
    assert len(admitted) == 3000
    admitted.sort()
    lo = 0
    for hi, t in enumerate(admitted):
        while admitted[lo] <= t - 60:
            lo += 1
        assert hi - lo + 1 <= 500
