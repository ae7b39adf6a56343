"""classify(): every error shape of PROVIDERS.md, bodies built as the providers send them."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tollhouse.capacity import (
    BREAKER_FAILURES,
    FALLBACK_TRIGGERS,
    RETRYABLE,
    ErrorClass,
    classify,
)
from tollhouse.simulator.errors import ERROR_STYLES, NOW, ErrorContext

E = ErrorClass


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def openai(type_: str, code: str | None, message: str = "m") -> bytes:
    return body({"error": {"message": message, "type": type_, "param": None, "code": code}})


def anthropic(type_: str, message: str = "m") -> bytes:
    return body(
        {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_01"}
    )


def gemini(code: int, status: str, details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": "m", "status": status}
    if details is not None:
        error["details"] = details
    return body({"error": error})


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_success_is_none(status: int) -> None:
    assert classify(status, b'{"id": "x"}') is None


OPENAI_CASES = [
    (429, openai("requests", "rate_limit_exceeded"), E.RATE_LIMIT),
    (429, openai("tokens", "rate_limit_exceeded"), E.RATE_LIMIT),
    (429, openai("insufficient_quota", "insufficient_quota"), E.CLIENT),
    (404, openai("invalid_request_error", "model_not_found"), E.MODEL_GONE),
    (400, openai("invalid_request_error", "model_not_found"), E.MODEL_GONE),
    (
        404,
        openai("invalid_request_error", None, "Invalid URL (POST /v1/chat/completion)"),
        E.CLIENT,
    ),
    (400, openai("invalid_request_error", None), E.CLIENT),
    (400, openai("invalid_request_error", "content_policy_violation"), E.CLIENT),
    (401, openai("invalid_request_error", "invalid_api_key"), E.CLIENT),
    (403, openai("invalid_request_error", "unsupported_country_region_territory"), E.CLIENT),
    (422, openai("invalid_request_error", None), E.CLIENT),
    (500, openai("server_error", None), E.SERVER),
    (502, b"<html>Bad gateway</html>", E.SERVER),
    (503, openai("server_error", None, "The engine is currently overloaded"), E.OVERLOADED),
]

ANTHROPIC_CASES = [
    (429, anthropic("rate_limit_error"), E.RATE_LIMIT),
    (529, anthropic("overloaded_error", "Overloaded"), E.OVERLOADED),
    (404, anthropic("not_found_error", "model: claude-nope"), E.MODEL_GONE),
    (500, anthropic("api_error", "Internal server error"), E.SERVER),
    (400, anthropic("invalid_request_error", "Your credit balance is too low"), E.CLIENT),
    (401, anthropic("authentication_error"), E.CLIENT),
    (403, anthropic("permission_error"), E.CLIENT),
    (413, anthropic("request_too_large"), E.CLIENT),
    (402, anthropic("billing_error"), E.CLIENT),
    (504, anthropic("timeout_error"), E.TIMEOUT),
]

RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"}
GEMINI_CASES = [
    (429, gemini(429, "RESOURCE_EXHAUSTED", [RETRY_INFO]), E.RATE_LIMIT),
    (429, gemini(429, "RESOURCE_EXHAUSTED"), E.RATE_LIMIT),
    (404, gemini(404, "NOT_FOUND"), E.MODEL_GONE),
    (503, gemini(503, "UNAVAILABLE"), E.OVERLOADED),
    (500, gemini(500, "INTERNAL"), E.SERVER),
    (504, gemini(504, "DEADLINE_EXCEEDED"), E.SERVER),
    (400, gemini(400, "INVALID_ARGUMENT"), E.CLIENT),
    (400, gemini(400, "FAILED_PRECONDITION"), E.CLIENT),
    (403, gemini(403, "PERMISSION_DENIED"), E.CLIENT),
]


@pytest.mark.parametrize(("status", "data", "expected"), OPENAI_CASES)
def test_openai_shapes(status: int, data: bytes, expected: ErrorClass) -> None:
    assert classify(status, data) is expected


@pytest.mark.parametrize(("status", "data", "expected"), ANTHROPIC_CASES)
def test_anthropic_shapes(status: int, data: bytes, expected: ErrorClass) -> None:
    assert classify(status, data) is expected


@pytest.mark.parametrize(("status", "data", "expected"), GEMINI_CASES)
def test_gemini_shapes(status: int, data: bytes, expected: ErrorClass) -> None:
    assert classify(status, data) is expected


def test_gemini_error_wrapped_in_a_list() -> None:
    data = b"[" + gemini(404, "NOT_FOUND") + b"]"
    assert classify(404, data) is E.MODEL_GONE


SIMULATED = {
    # (style, kind) -> class; the simulator renders each provider's exact error response
    ("openai", "rate_limit"): E.RATE_LIMIT,
    ("openai", "insufficient_quota"): E.CLIENT,
    ("openai", "server_error"): E.SERVER,
    ("openai", "overloaded"): E.OVERLOADED,
    ("openai", "not_found"): E.MODEL_GONE,
    ("openai", "invalid_request"): E.CLIENT,
    ("anthropic", "rate_limit"): E.RATE_LIMIT,
    ("anthropic", "insufficient_quota"): E.CLIENT,
    ("anthropic", "server_error"): E.SERVER,
    ("anthropic", "overloaded"): E.OVERLOADED,
    ("anthropic", "not_found"): E.MODEL_GONE,
    ("anthropic", "invalid_request"): E.CLIENT,
    ("gemini", "rate_limit"): E.RATE_LIMIT,
    ("gemini", "insufficient_quota"): E.RATE_LIMIT,  # RESOURCE_EXHAUSTED either way
    ("gemini", "server_error"): E.SERVER,
    ("gemini", "overloaded"): E.OVERLOADED,
    ("gemini", "not_found"): E.MODEL_GONE,
    ("gemini", "invalid_request"): E.CLIENT,
}


@pytest.mark.parametrize(("style", "kind"), sorted(SIMULATED))
def test_the_simulators_error_responses(style: str, kind: str) -> None:
    ctx = ErrorContext("some-model", 2.0, "req_1", NOW, message="bad field")
    rendered = ERROR_STYLES[style].render(kind, ctx)
    assert classify(rendered.status, body(rendered.body)) is SIMULATED[(style, kind)]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, E.RATE_LIMIT), (529, E.OVERLOADED), (503, E.OVERLOADED), (500, E.SERVER),
     (404, E.CLIENT), (400, E.CLIENT), (408, E.TIMEOUT), (409, E.SERVER), (302, E.CLIENT)],
)  # fmt: skip
def test_status_alone_when_the_body_is_empty_or_not_json(status: int, expected: ErrorClass) -> None:
    assert classify(status) is expected
    assert classify(status, b"") is expected
    assert classify(status, b"<html>oops</html>") is expected


def test_huge_bodies_are_not_parsed() -> None:
    huge = openai("insufficient_quota", "insufficient_quota", "x" * 100_000)
    assert classify(429, huge) is E.RATE_LIMIT  # not parsed: the status decides


def test_mid_stream_error_events_classify_by_body() -> None:
    assert classify(None, anthropic("overloaded_error")) is E.OVERLOADED
    assert classify(None, anthropic("api_error")) is E.SERVER
    assert classify(None, anthropic("rate_limit_error")) is E.RATE_LIMIT
    assert classify(None, anthropic("invalid_request_error")) is E.CLIENT
    assert classify(None, anthropic("timeout_error")) is E.TIMEOUT
    responses_event = body({"type": "error", "code": "server_error", "message": "m"})
    assert classify(None, responses_event) is E.SERVER
    assert classify(None, b'{"type": "message_stop"}') is None
    assert classify(None) is None


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), E.TIMEOUT),  # asyncio.TimeoutError is this one since 3.11
        (aiohttp.ServerTimeoutError("read"), E.TIMEOUT),
        (aiohttp.ClientConnectionError(), E.CONNECTION),
        (aiohttp.ServerDisconnectedError(), E.CONNECTION),
        (aiohttp.ClientPayloadError("cut"), E.CONNECTION),
        (ConnectionResetError(), E.CONNECTION),
        (OSError("unreachable"), E.CONNECTION),
        (ValueError("our bug"), E.CLIENT),
    ],
)
def test_exceptions(exc: BaseException, expected: ErrorClass) -> None:
    assert classify(None, None, exc) is expected
    assert classify(500, anthropic("api_error"), exc) is expected  # the exception wins


def test_trigger_sets() -> None:
    assert E.CLIENT not in FALLBACK_TRIGGERS
    assert set(E) - {E.CLIENT} == FALLBACK_TRIGGERS
    assert E.MODEL_GONE not in RETRYABLE and E.CLIENT not in RETRYABLE
    assert {E.SERVER, E.OVERLOADED, E.TIMEOUT, E.CONNECTION} == BREAKER_FAILURES
    assert str(E.RATE_LIMIT) == "rate_limit"
