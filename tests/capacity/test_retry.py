"""RetryPolicy: full-jitter spread, hints always obeyed, the budget holding under failure."""

from __future__ import annotations

import random
import statistics

import pytest

from tollhouse.capacity import RetryPolicy


def test_full_jitter_spread() -> None:
    policy = RetryPolicy(base=0.5, cap=8.0, rng=random.Random(1234))
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (4, 8.0), (10, 8.0)]:
        samples = [policy.delay(attempt, None) for _ in range(5000)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert min(samples) < 0.02 * ceiling  # reaches near zero...
        assert max(samples) > 0.98 * ceiling  # ...and near the ceiling
        assert 0.45 * ceiling < statistics.fmean(samples) < 0.55 * ceiling  # uniform: mean 1/2


def test_the_cap_holds_for_huge_attempt_numbers() -> None:
    policy = RetryPolicy(rng=random.Random(1))
    assert all(policy.delay(10_000, None) <= 8.0 for _ in range(100))
    assert all(0 <= policy.delay(-3, None) <= 0.5 for _ in range(100))


@pytest.mark.parametrize("hint", [0.0, 0.3, 5.0, 30.0, 120.0])
def test_retry_after_is_always_obeyed(hint: float) -> None:
    policy = RetryPolicy(rng=random.Random(9))
    for attempt in range(6):
        for _ in range(200):
            assert policy.delay(attempt, hint) >= hint  # the hint wins, even above the cap
    assert policy.delay(0, 30.0) == 30.0


def test_seeded_rng_is_deterministic() -> None:
    a = RetryPolicy(rng=random.Random(5))
    b = RetryPolicy(rng=random.Random(5))
    assert [a.delay(2, None) for _ in range(10)] == [b.delay(2, None) for _ in range(10)]


def test_budget_holds_under_total_failure() -> None:
    """1000 requests that all fail, each wanting 2 retries: the budget caps the retries."""
    policy = RetryPolicy(max_attempts=3, budget_ratio=0.2, budget_window=60.0, min_retries=3)
    retries = 0
    for n in range(1000):
        now = n * 0.05  # 50 s: inside one window
        policy.record_request("openai", now)
        attempt = 1
        while policy.attempts_left(attempt) and policy.try_spend_retry("openai", now):
            retries += 1
            attempt += 1
    assert retries <= 0.2 * 1000 + 3
    assert retries >= 0.2 * 1000  # and the budget is actually usable


def test_budget_floor_lets_a_quiet_upstreams_first_failure_retry() -> None:
    policy = RetryPolicy(min_retries=3)
    policy.record_request("local", 0.0)
    assert policy.try_spend_retry("local", 0.0)
    assert policy.try_spend_retry("local", 0.0)
    assert policy.try_spend_retry("local", 0.0)
    assert not policy.try_spend_retry("local", 0.0)


def test_budget_is_per_upstream_and_refills_with_the_window() -> None:
    policy = RetryPolicy(budget_ratio=0.5, budget_window=60.0, min_retries=0)
    for _ in range(10):
        policy.record_request("a", 0.0)
    spent = sum(policy.try_spend_retry("a", 1.0) for _ in range(20))
    assert spent == 5
    assert not policy.try_spend_retry("b", 1.0)  # b has no requests and no floor
    assert not policy.try_spend_retry("a", 30.0)
    for _ in range(10):
        policy.record_request("a", 100.0)  # a window later, the old retries are gone
    assert sum(policy.try_spend_retry("a", 100.0) for _ in range(20)) == 5


def test_attempts_left() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.attempts_left(a) for a in range(4)] == [True, True, True, False]


def test_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
