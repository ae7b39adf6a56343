"""Upstream error bodies re-expressed in the client's error shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tollhouse.translate import error_translate

OPENAI_RATE_LIMIT = {
    "error": {
        "message": "Rate limit reached for gpt-5.5.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_QUOTA = {
    "error": {
        "message": "You exceeded your current quota.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
ANTHROPIC_OVERLOADED = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
    "request_id": "req_1",
}
GEMINI_EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"}],
    }
}


def translated(source: str, target: str, status: int, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return json.loads(error_translate(source, target, status, raw))


@pytest.mark.parametrize(
    ("source", "target", "status", "body", "expected"),
    [
        (
            "anthropic",
            "openai-chat",
            429,
            OPENAI_RATE_LIMIT,
            {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": "Rate limit reached for gpt-5.5."},
            },
        ),
        (
            "gemini",
            "openai-chat",
            429,
            OPENAI_QUOTA,
            {
                "error": {
                    "code": 429,
                    "message": "You exceeded your current quota.",
                    "status": "RESOURCE_EXHAUSTED",
                }
            },
        ),
        (
            "openai-chat",
            "anthropic",
            529,
            ANTHROPIC_OVERLOADED,
            {
                "error": {
                    "message": "Overloaded",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
        (
            "gemini",
            "anthropic",
            529,
            ANTHROPIC_OVERLOADED,
            {"error": {"code": 529, "message": "Overloaded", "status": "UNAVAILABLE"}},
        ),
        (
            "openai-chat",
            "gemini",
            429,
            GEMINI_EXHAUSTED,
            {
                "error": {
                    "message": "Resource has been exhausted.",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        ),
        (
            "anthropic",
            "gemini",
            429,
            GEMINI_EXHAUSTED,
            {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": "Resource has been exhausted."},
            },
        ),
    ],
)
def test_errors_translate_in_every_direction(
    source: str, target: str, status: int, body: Any, expected: Any
) -> None:
    assert translated(source, target, status, body) == expected


@pytest.mark.parametrize(
    ("body", "status", "openai_code", "anthropic_type"),
    [
        (OPENAI_QUOTA, 429, "insufficient_quota", "billing_error"),
        (
            {
                "error": {
                    "message": "no",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            },
            404,
            "model_not_found",
            "not_found_error",
        ),
        (
            {
                "error": {
                    "message": "no",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            401,
            "invalid_api_key",
            "authentication_error",
        ),
    ],
)
def test_openai_error_codes_keep_their_meaning(
    body: Any, status: int, openai_code: str, anthropic_type: str
) -> None:
    anthropic = translated("anthropic", "openai-chat", status, body)
    assert anthropic["error"]["type"] == anthropic_type
    gemini = json.dumps(anthropic).encode()
    back = json.loads(error_translate("openai-chat", "anthropic", status, gemini))
    assert back["error"]["code"] == openai_code


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ],
)
def test_unparseable_bodies_get_a_kind_from_the_status(status: int, kind: str) -> None:
    out = translated("anthropic", "gemini", status, b"<html>upstream proxy error</html>")
    assert out == {
        "type": "error",
        "error": {"type": kind, "message": "<html>upstream proxy error</html>"},
    }


def test_an_empty_body_gets_the_status_phrase() -> None:
    assert translated("gemini", "openai-chat", 503, b"") == {
        "error": {"code": 503, "message": "Service Unavailable", "status": "UNAVAILABLE"}
    }


def test_gemini_error_arrays_are_read() -> None:
    body = json.dumps([GEMINI_EXHAUSTED]).encode()
    out = json.loads(error_translate("anthropic", "gemini", 429, body))
    assert out["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("dialect", ["openai-chat", "anthropic", "gemini"])
def test_same_dialect_errors_pass_through_byte_for_byte(dialect: str) -> None:
    raw = b'{"error": {"weird": true}}  '
    assert error_translate(dialect, dialect, 500, raw) is raw
