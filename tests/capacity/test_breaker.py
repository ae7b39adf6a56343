"""CircuitBreaker: closed -> open -> half-open probe -> closed or open again."""

from __future__ import annotations

import math

from tollhouse.capacity import CircuitBreaker


def opened(at: float = 0.0) -> CircuitBreaker:
    b = CircuitBreaker(failures=3, reset_after=30.0)
    for _ in range(3):
        b.record(False, at)
    assert b.state == "open"
    return b


def test_closed_counts_consecutive_failures_only() -> None:
    b = CircuitBreaker(failures=3, reset_after=30.0)
    b.record(False, 0.0)
    b.record(False, 0.0)
    b.record(True, 0.0)  # a success resets the count
    b.record(False, 0.0)
    b.record(False, 0.0)
    assert b.state == "closed" and b.allow(0.0)
    b.record(False, 1.0)
    assert b.state == "open"


def test_open_refuses_until_reset_after() -> None:
    b = opened(at=10.0)
    assert not b.allow(10.0)
    assert not b.allow(39.9)
    assert b.wait(25.0) == 15.0
    assert b.allow(40.0)  # the probe
    assert b.state == "half_open"


def test_half_open_lets_one_probe_at_a_time() -> None:
    b = opened()
    assert b.allow(30.0)
    assert not b.allow(30.0)
    assert not b.allow(100.0)
    assert b.wait(100.0) == math.inf  # until the probe reports


def test_probe_success_closes() -> None:
    b = opened()
    assert b.allow(30.0)
    b.record(True, 31.0)
    assert b.state == "closed"
    assert all(b.allow(31.0) for _ in range(5))
    assert b.consecutive == 0


def test_probe_failure_reopens_for_another_period() -> None:
    b = opened()
    assert b.allow(30.0)
    b.record(False, 32.0)
    assert b.state == "open"
    assert not b.allow(61.0)
    assert b.allow(62.0)


def test_abandoned_probe_lets_the_next_through() -> None:
    b = opened()
    assert b.allow(30.0)
    b.abandon()
    assert b.state == "half_open"
    assert b.allow(30.0)


def test_late_outcomes_while_open_are_ignored() -> None:
    b = opened(at=0.0)
    b.record(True, 5.0)  # a request sent before the circuit opened
    b.record(False, 6.0)
    assert b.state == "open" and b.wait(6.0) == 24.0


def test_trip_opens_at_once_with_its_reason_and_news() -> None:
    b = CircuitBreaker(failures=5, reset_after=30.0)
    b.trip(10.0, "no connection")
    assert (b.state, b.reason, b.news, b.until) == ("open", "no connection", True, 40.0)
    assert not b.allow(39.0) and b.allow(40.0)


def test_a_mirrored_trip_keeps_the_other_instances_until_and_is_no_news() -> None:
    b = CircuitBreaker(failures=5, reset_after=30.0)
    b.trip(10.0, "open on another instance", for_seconds=5.0)
    assert b.until == 15.0 and not b.news
    b.trip(11.0, "open on another instance", for_seconds=1.0)  # never shortened
    assert b.until == 15.0


def test_reset_closes_as_new() -> None:
    b = opened()
    b.reset()
    assert b.state == "closed" and b.allow(1.0) and b.consecutive == 0
