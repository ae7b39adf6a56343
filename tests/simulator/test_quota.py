"""The quota limiter on its own: token buckets stepped by a fake clock."""

from __future__ import annotations

import pytest

from tollhouse.simulator.quota import Budget, FakeClock, QuotaLimiter, parse_models

OPENAI = "openai"
MINI = "gpt-4o-mini"


def close(got: Budget | None, want: Budget) -> bool:
    """Equal, up to float noise in the reset time."""
    return (
        got is not None
        and (got.limit, got.remaining) == (want.limit, want.remaining)
        and got.reset_s == pytest.approx(want.reset_s)
    )


def drain(limiter: QuotaLimiter, n: int, model: str = MINI, tokens: int = 0) -> list[bool]:
    return [limiter.check(OPENAI, model, tokens).admitted for _ in range(n)]


def test_a_full_bucket_admits_a_minutes_quota_then_rejects() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter(rpm=5, clock=clock)
    assert drain(limiter, 6) == [True] * 5 + [False]
    verdict = limiter.check(OPENAI, MINI)
    assert not verdict.admitted and verdict.exceeded == "requests"
    assert verdict.retry_after_s == pytest.approx(12.0)  # one request per 60/5 s
    assert close(verdict.requests, Budget(limit=5, remaining=0, reset_s=60.0))


def test_headers_budget_counts_down_and_reset_is_time_to_full() -> None:
    limiter = QuotaLimiter(rpm=5, clock=FakeClock())
    budgets = [limiter.check(OPENAI, MINI).requests for _ in range(3)]
    assert [b.remaining for b in budgets if b] == [4, 3, 2]
    assert [b.reset_s for b in budgets if b] == pytest.approx([12.0, 24.0, 36.0])


def test_refill_is_continuous_and_rejections_spend_nothing() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter(rpm=5, clock=clock)
    drain(limiter, 5)
    clock.advance(6)
    assert limiter.check(OPENAI, MINI).retry_after_s == pytest.approx(6.0)
    assert limiter.check(OPENAI, MINI).retry_after_s == pytest.approx(6.0)
    clock.advance(6)
    assert drain(limiter, 2) == [True, False]
    clock.advance(36)
    assert drain(limiter, 4) == [True, True, True, False]


def test_a_short_burst_spreads_the_quota_over_the_minute() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter(rpm=120, burst_s=1, clock=clock)  # a bucket of 2, 2 per second
    assert drain(limiter, 3) == [True, True, False]
    assert limiter.check(OPENAI, MINI).retry_after_s == pytest.approx(0.5)
    admitted = 0
    for _ in range(600):  # a minute in 0.1 s steps, a request every step
        clock.advance(0.1)
        admitted += drain(limiter, 1)[0]
    assert admitted == 120


def test_budget_reports_the_minute_limit_and_what_is_left_now() -> None:
    limiter = QuotaLimiter(rpm=120, burst_s=1, clock=FakeClock())
    assert close(limiter.check(OPENAI, MINI).requests, Budget(120, 1, 0.5))


def test_tokens_quota_counts_the_requests_tokens() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter(tpm=100, clock=clock)
    first = limiter.check(OPENAI, MINI, tokens=60)
    assert first.admitted and close(first.tokens, Budget(100, 40, 36.0))
    assert first.requests is None
    second = limiter.check(OPENAI, MINI, tokens=60)
    assert not second.admitted and second.exceeded == "tokens"
    assert second.retry_after_s == pytest.approx(12.0)  # 20 tokens at 100/60 per second
    assert second.requested_tokens == 60
    clock.advance(12)
    assert limiter.check(OPENAI, MINI, tokens=60).admitted


def test_the_longer_wait_of_two_quotas_wins() -> None:
    limiter = QuotaLimiter(rpm=60, tpm=60, clock=FakeClock())
    assert limiter.check(OPENAI, MINI, tokens=59).admitted
    verdict = limiter.check(OPENAI, MINI, tokens=10)
    assert verdict.exceeded == "tokens" and verdict.retry_after_s == pytest.approx(9.0)


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter(tpm=60, clock=clock)
    assert limiter.check(OPENAI, MINI, tokens=500).admitted
    assert limiter.check(OPENAI, MINI, tokens=500).retry_after_s == pytest.approx(60.0)


def test_each_flavor_and_model_has_its_own_bucket() -> None:
    limiter = QuotaLimiter(rpm=1, clock=FakeClock())
    assert drain(limiter, 2) == [True, False]
    assert drain(limiter, 1, model="gpt-4.1") == [True]
    assert limiter.check("xai", MINI).admitted
    assert limiter.check("gemini", "gemini-2.5-flash").admitted
    assert not limiter.check("gemini", "models/gemini-2.5-flash").admitted


def test_models_filter_leaves_other_models_unlimited() -> None:
    limiter = QuotaLimiter(rpm=1, models=parse_models("gpt-4o-mini, o3"), clock=FakeClock())
    assert drain(limiter, 2) == [True, False]
    assert drain(limiter, 5, model="gpt-4o") == [True] * 5
    assert limiter.check(OPENAI, "gpt-4o").requests is None  # no quota headers to report


def test_stats_count_every_request_and_reset_clears_them() -> None:
    limiter = QuotaLimiter(rpm=2, models=frozenset({MINI}), clock=FakeClock())
    drain(limiter, 3)
    drain(limiter, 2, model="gpt-4o")
    assert limiter.stats() == {
        "admitted": 4,
        "rate_limited": 1,
        "by_model": {
            "gpt-4o": {"admitted": 2, "rate_limited": 0},
            MINI: {"admitted": 2, "rate_limited": 1},
        },
    }
    limiter.reset()
    assert limiter.stats() == {"admitted": 0, "rate_limited": 0, "by_model": {}}
    assert drain(limiter, 2) == [True, True]  # buckets full again


def test_no_quota_admits_everything() -> None:
    limiter = QuotaLimiter()
    assert not limiter.enabled
    assert drain(limiter, 100) == [True] * 100


@pytest.mark.parametrize(
    "kwargs", [{"rpm": 0}, {"tpm": -1}, {"rpm": 5, "burst_s": 0}, {"rpm": 5, "burst_s": -1}]
)
def test_bad_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        QuotaLimiter(**kwargs)  # type: ignore[arg-type]


def test_parse_models_strips_blanks_and_prefixes() -> None:
    assert parse_models(" gpt-4o-mini ,, models/gemini-2.5-flash") == {
        "gpt-4o-mini",
        "gemini-2.5-flash",
    }
