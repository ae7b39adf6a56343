"""retry_hint() and parse_rate_limits(): every header format of PROVIDERS.md, sans-io."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict

from tollhouse.capacity import RateLimitInfo, parse_duration, parse_rate_limits, retry_hint
from tollhouse.capacity.hints import parse_http_date, parse_rfc3339
from tollhouse.simulator.errors import ERROR_STYLES, NOW, ErrorContext

WALL = NOW.timestamp()  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("12ms", 0.012),
        ("1.5s", 1.5),
        ("1s", 1.0),
        ("2m30.5s", 150.5),
        ("1h2m3s", 3723.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("22s", 22.0),
        ("1.500s", 1.5),
        ("0s", 0.0),
        ("7", 7.0),
        (" 3s ", 3.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "6m0", "abc", "1x", "m6", "1s junk", "inf", "nan"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


def test_dates() -> None:
    assert parse_http_date("Thu, 01 Jan 2026 00:00:30 GMT", WALL) == 30.0
    assert parse_http_date("not a date", WALL) is None
    assert parse_rfc3339("2026-01-01T00:00:05Z", WALL) == 5.0
    assert parse_rfc3339("2026-01-01T01:00:05.5+01:00", WALL) == 5.5
    assert parse_rfc3339("2026-01-01T00:00:05", WALL) is None  # no zone: unusable
    assert parse_rfc3339("soon", WALL) is None


def hint(headers: Mapping[str, str], body: bytes | None = None, status: int = 429) -> float | None:
    return retry_hint(status, headers, body, now=WALL)


def test_retry_after_ms_wins() -> None:
    assert hint({"retry-after-ms": "1500", "retry-after": "2"}) == 1.5


def test_retry_after_seconds_and_date() -> None:
    assert hint({"retry-after": "2"}) == 2.0
    assert hint({"retry-after": "0.25"}) == 0.25
    assert hint({"Retry-After": "Thu, 01 Jan 2026 00:00:42 GMT"}) == 42.0
    assert hint({"retry-after": "Wed, 31 Dec 2025 23:59:00 GMT"}) == 0.0  # past: now
    assert hint({"retry-after": "soon"}) is None
    assert hint({"retry-after-ms": "junk", "retry-after": "3"}) == 3.0


def test_header_names_are_case_insensitive_in_any_mapping() -> None:
    assert hint({"Retry-After-Ms": "100"}) == 0.1
    assert hint(CIMultiDict({"RETRY-AFTER": "4"})) == 4.0


def test_openai_reset_only_when_exhausted() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "12ms",
        "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert hint(headers) == pytest.approx(0.012)
    headers["x-ratelimit-remaining-tokens"] = "0"
    assert hint(headers) == 360.0  # both budgets must refill: the longer reset
    assert hint({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"}) is None


def test_anthropic_reset_relative_to_now() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:07Z",
        "anthropic-ratelimit-tokens-remaining": "5000",
        "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:50Z",
    }
    assert hint(headers) == 7.0
    assert retry_hint(429, headers, None, now=WALL + 5) == 2.0
    headers["anthropic-ratelimit-output-tokens-remaining"] = "0"
    headers["anthropic-ratelimit-output-tokens-reset"] = "2026-01-01T00:00:09Z"
    assert hint(headers) == 9.0


def test_gemini_retry_info_in_the_body() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"},
                ],
            }
        }
    ).encode()
    assert hint({}, body) == 22.0
    assert hint({}, body, status=200) is None  # success bodies are never parsed
    assert hint({"retry-after": "3"}, body) == 3.0  # an explicit header wins


def test_nothing_says() -> None:
    assert hint({}) is None
    assert hint({"content-type": "application/json"}, b'{"error": {"code": 429}}') is None
    # Vertex: a bare 429. The caller falls back to its default cooldown.
    assert hint({}, b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}') is None


@pytest.mark.parametrize("style", ["openai", "anthropic", "gemini"])
def test_the_simulators_429s_carry_a_hint(style: str) -> None:
    rendered = ERROR_STYLES[style].render("rate_limit", ErrorContext("m", 2.5, "r", NOW))
    found = retry_hint(429, rendered.headers, json.dumps(rendered.body).encode(), now=WALL)
    assert found == pytest.approx(2.5 if style != "anthropic" else 3.0)  # Anthropic: whole s


def test_default_now_is_the_system_clock() -> None:
    in_a_minute = datetime.fromtimestamp(datetime.now(UTC).timestamp() + 60, UTC)
    found = retry_hint(
        429, {"retry-after": in_a_minute.strftime("%a, %d %b %Y %H:%M:%S GMT")}, None
    )
    assert found is not None and 50 < found <= 60


def test_parse_rate_limits_openai() -> None:
    headers = ERROR_STYLES["openai"].ok_headers("r", NOW)
    assert parse_rate_limits(headers) == RateLimitInfo(499, 199_999, 0.12, 0.001, 500, 200_000)


def test_parse_rate_limits_anthropic_takes_the_tightest_token_budget() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:01Z",
        "anthropic-ratelimit-tokens-limit": "100000",
        "anthropic-ratelimit-tokens-remaining": "90000",
        "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:06Z",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": "700",
        "anthropic-ratelimit-output-tokens-reset": "2026-01-01T00:00:04Z",
    }
    assert parse_rate_limits(headers, now=WALL) == RateLimitInfo(49, 700, 1.0, 4.0, 50, 8000)


def test_parse_rate_limits_nothing() -> None:
    assert parse_rate_limits({"x-request-id": "r"}).empty
    assert parse_rate_limits(ERROR_STYLES["gemini"].ok_headers("r", NOW)).empty
    only_requests = parse_rate_limits(
        {
            "anthropic-ratelimit-requests-remaining": "3",
            "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:02Z",
        },
        now=WALL,
    )
    assert only_requests == RateLimitInfo(3, None, 2.0, None)
