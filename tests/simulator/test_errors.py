from __future__ import annotations

import pytest

from tollhouse.simulator.errors import (
    ERROR_STYLES,
    NOW,
    ErrorContext,
    go_duration,
    proto_duration,
)

CTX = ErrorContext("some-model", 2.5, "req_1", NOW)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.012, "12ms"), (1, "1s"), (2.5, "2.5s"), (360, "6m0s"), (61.5, "1m1.5s"), (3600, "1h0m0s")],
)
def test_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_proto_durations() -> None:
    assert proto_duration(22) == "22s"
    assert proto_duration(1.5) == "1.500s"


@pytest.mark.parametrize(
    ("style", "kind", "status"),
    [
        ("openai", "rate_limit", 429),
        ("openai", "insufficient_quota", 429),
        ("openai", "server_error", 500),
        ("openai", "overloaded", 503),
        ("openai", "not_found", 404),
        ("anthropic", "rate_limit", 429),
        ("anthropic", "overloaded", 529),
        ("anthropic", "not_found", 404),
        ("anthropic", "server_error", 500),
        ("gemini", "rate_limit", 429),
        ("gemini", "overloaded", 503),
        ("gemini", "not_found", 404),
        ("gemini", "server_error", 500),
    ],
)
def test_statuses(style: str, kind: str, status: int) -> None:
    assert ERROR_STYLES[style].render(kind, CTX).status == status


def test_openai_rate_limit_body_and_headers() -> None:
    error = ERROR_STYLES["openai"].render("rate_limit", CTX)
    assert error.body["error"]["type"] == "requests"
    assert error.body["error"]["code"] == "rate_limit_exceeded"
    assert error.body["error"]["param"] is None
    assert error.headers["retry-after"] == "3"
    assert error.headers["retry-after-ms"] == "2500"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.headers["x-ratelimit-reset-requests"] == "2.5s"
    assert error.headers["x-ratelimit-reset-tokens"] == "2.5s"


def test_anthropic_rate_limit_headers_reset_in_rfc3339() -> None:
    error = ERROR_STYLES["anthropic"].render("rate_limit", CTX)
    assert error.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": error.body["error"]["message"]},
        "request_id": "req_1",
    }
    assert error.headers["anthropic-ratelimit-requests-remaining"] == "0"
    # 2.5 s after NOW, rounded up: at :02 the budget is not back yet
    assert error.headers["anthropic-ratelimit-requests-reset"] == "2026-01-01T00:00:03Z"
    assert error.headers["retry-after"] == "3"


def test_gemini_rate_limit_carries_retry_info() -> None:
    error = ERROR_STYLES["gemini"].render("rate_limit", CTX).body["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and error["code"] == 429
    retry = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.500s"}]
    quota = ERROR_STYLES["gemini"].render("insufficient_quota", CTX).body["error"]
    assert not [d for d in quota["details"] if d["@type"].endswith("RetryInfo")]
