"""GCRA with a numeric cost: exact admit/deny times, bursts, and the window guarantee."""

from __future__ import annotations

import heapq
import random

import pytest

from tollhouse.capacity.gcra import MINUTE_US, NEVER, US, Decision, Rate, adjust, backlog, decide


def test_rate_validation() -> None:
    for bad in [(0, 1), (10, 0), (10, 11)]:
        with pytest.raises(ValueError):
            Rate.per_minute(*bad)
    rate = Rate.per_minute(500, 50)
    assert rate.sustained == 451
    assert rate.ticks(3) == 3 * 451
    assert rate.to_us(451) == 1 and rate.to_us(452) == 2  # rounded up: a wait never ends early


def test_admit_and_deny_at_exact_times() -> None:
    rate = Rate.per_minute(60, burst=1)  # one a second
    second = rate.ticks(US)
    assert decide(NEVER, 1, 0, rate) == Decision(True, second, 0)
    assert decide(second, 1, 0, rate) == Decision(False, second, US)
    assert decide(second, 1, US - 1, rate) == Decision(False, second, 1)
    assert decide(second, 1, US, rate) == Decision(True, 2 * second, 0)
    assert decide(second, 1, 5 * US, rate) == Decision(True, 6 * second, 0)  # idle isn't banked


def run_until(rate: Rate, n: int, cost: int = 1) -> list[int]:
    """Admission times of ``n`` back-to-back requests, each retried exactly when told."""
    tat, now, admitted = NEVER, 0, list[int]()
    while len(admitted) < n:
        d = decide(tat, cost, now, rate)
        if d.admitted:
            tat = d.tat
            admitted.append(now)
        else:
            now += d.wait
    return admitted


def test_burst_then_steady() -> None:
    rate = Rate.per_minute(60, burst=10)  # sustained 51 a minute
    admitted = run_until(rate, 30)
    assert admitted[:10] == [0] * 10  # the burst goes at once, exactly
    steady = admitted[10:]
    assert steady == [-(-k * MINUTE_US // 51) for k in range(1, 21)]  # then 51 a minute


def test_cost_pushes_by_its_share_of_the_minute() -> None:
    rate = Rate.per_minute(60_000, burst=15_000)  # tokens; sustained 45_001 a minute
    d = decide(NEVER, 15_000, 0, rate)
    assert d.admitted and d.tat == 15_000 * MINUTE_US
    denied = decide(d.tat, 1000, 0, rate)
    assert not denied.admitted
    assert denied.wait == -(-1000 * MINUTE_US // 45_001)  # 1000 tokens' worth of refill
    assert not decide(d.tat, 1000, denied.wait - 1, rate).admitted
    assert decide(d.tat, 1000, denied.wait, rate).admitted


def test_a_request_larger_than_the_burst_waits_for_an_empty_bucket() -> None:
    rate = Rate.per_minute(1000, burst=100)
    assert decide(NEVER, 5000, 0, rate).admitted  # empty bucket: it goes (never starved)
    tat = decide(NEVER, 10, 0, rate).tat
    big = decide(tat, 5000, 0, rate)
    assert not big.admitted and big.wait == rate.to_us(tat)  # when the bucket is empty again
    assert decide(tat, 5000, big.wait, rate).admitted


def admissions(rate: Rate, clients: int, per_client: int, seed: int, cost: int = 1) -> list[int]:
    """Clients that each want ``per_client`` requests, retrying exactly when told."""
    rng = random.Random(seed)
    heap = [(rng.randrange(0, 5 * US), c) for c in range(clients)]
    heapq.heapify(heap)
    left, tat, times = [per_client] * clients, NEVER, []
    while heap:
        now, c = heapq.heappop(heap)
        d = decide(tat, cost, now, rate)
        if not d.admitted:
            heapq.heappush(heap, (now + d.wait, c))
            continue
        tat = d.tat
        times.append(now)
        left[c] -= 1
        if left[c]:
            heapq.heappush(heap, (now + rng.randrange(0, 2 * US), c))
    return times


def most_in_any_window(
    times: list[int], window: int = MINUTE_US, weights: list[int] | None = None
) -> int:
    """The largest total admitted in any window [t - window, t), to the microsecond."""
    pairs = sorted(zip(times, weights or [1] * len(times), strict=True))
    best = total = lo = 0
    for t, w in pairs:
        total += w
        while pairs[lo][0] <= t - window:
            total -= pairs[lo][1]
            lo += 1
        best = max(best, total)
    return best


@pytest.mark.parametrize("burst", [1, 10, 50, 250, 500])
def test_no_minute_ever_admits_more_than_the_limit(burst: int) -> None:
    rate = Rate.per_minute(500, burst)
    times = admissions(rate, clients=50, per_client=80, seed=burst)  # 4000 requests
    assert len(times) == 4000
    assert most_in_any_window(times) <= 500
    # and the limiter is not needlessly slow: sustained minutes run close to it
    assert most_in_any_window(times) >= rate.sustained


def test_the_window_holds_for_token_costs_too() -> None:
    rate = Rate.per_minute(10_000, 2_000)
    rng = random.Random(5)
    tat, now, spent = NEVER, 0, []
    for _ in range(3000):
        cost = rng.randrange(1, 2_001)
        d = decide(tat, cost, now, rate)
        while not d.admitted:
            now += d.wait
            d = decide(tat, cost, now, rate)
        tat = d.tat
        spent.append((now, cost))
        now += rng.randrange(0, US // 10)
    assert most_in_any_window([t for t, _ in spent], weights=[c for _, c in spent]) <= 10_000


def test_adjust_charges_from_now_and_refunds_only_what_lies_ahead() -> None:
    rate = Rate.per_minute(60_000, 10_000)
    at = rate.ticks
    per_1000 = 1000 * MINUTE_US  # ticks: 1000 emission intervals
    assert adjust(NEVER, 1000, 5 * US, rate) == at(5 * US) + per_1000  # charge: usage just seen
    assert adjust(at(10 * US), 1000, 0, rate) == at(10 * US) + per_1000
    assert adjust(at(10 * US), -1000, 0, rate) == at(10 * US) - per_1000
    assert adjust(at(10 * US), -(10**9), 0, rate) == 0  # never below now
    assert adjust(at(3 * US), -1000, 5 * US, rate) == at(3 * US)  # already drained: nothing
    # With the reservation's own end: only its slot comes back, not later ones'.
    assert adjust(at(10 * US), -(10**9), 0, rate, until=at(4 * US)) == at(6 * US)


def test_backlog() -> None:
    rate = Rate.per_minute(60, 1)
    assert backlog(NEVER, 0, rate) == 0
    assert backlog(rate.ticks(5 * US), 0, rate) == 5
    assert backlog(rate.ticks(5 * US), 10 * US, rate) == 0
