"""What kind of failure an upstream answer (or exception) is, from its wire shape.

The class decides what the gateway does next: wait and retry, fall back to
another model, open the circuit, or hand the error to the client as it is.

>>> classify(429, b'{"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}')
<ErrorClass.CLIENT: 'client'>
>>> classify(529, b'{"type": "error", "error": {"type": "overloaded_error"}}')
<ErrorClass.OVERLOADED: 'overloaded'>
"""

from __future__ import annotations

import enum
import json
from typing import Any

import aiohttp

MAX_ERROR_BODY = 64 * 1024
"""Error bodies are small; anything larger is not parsed (nothing slow on the request path)."""


class ErrorClass(enum.StrEnum):
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    MODEL_GONE = "model_gone"
    CLIENT = "client"


FALLBACK_TRIGGERS = frozenset(
    {
        ErrorClass.RATE_LIMIT,  # only when the wait would overrun the deadline: the caller decides
        ErrorClass.OVERLOADED,
        ErrorClass.SERVER,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.MODEL_GONE,
    }
)
"""Failures another model may not share. Never CLIENT: the request itself is wrong."""

RETRYABLE = frozenset(
    {
        ErrorClass.RATE_LIMIT,
        ErrorClass.OVERLOADED,
        ErrorClass.SERVER,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
    }
)
"""Failures worth another attempt on the same model (MODEL_GONE and CLIENT would repeat)."""

BREAKER_FAILURES = frozenset(
    {ErrorClass.SERVER, ErrorClass.OVERLOADED, ErrorClass.TIMEOUT, ErrorClass.CONNECTION}
)
"""Failures that say the upstream is unhealthy; a 429, a 4xx or a 404 prove it is answering."""

# Error type/code/status strings, as the providers spell them.
_RATE_LIMIT = frozenset({"rate_limit_exceeded", "rate_limit_error", "RESOURCE_EXHAUSTED"})
_NO_QUOTA = frozenset({"insufficient_quota"})  # OpenAI: billing, waiting won't help
_OVERLOADED = frozenset({"overloaded_error", "UNAVAILABLE"})
_MODEL_GONE = frozenset({"model_not_found", "not_found_error", "NOT_FOUND"})
_TIMEOUT = frozenset({"timeout_error"})  # Anthropic's 504
_SERVER = frozenset({"api_error", "server_error", "INTERNAL", "DEADLINE_EXCEEDED"})


def classify(
    status: int | None, body: bytes | None = None, exc: BaseException | None = None
) -> ErrorClass | None:
    """The class of a failed exchange; None for a success (2xx) or when nothing failed.

    ``exc`` wins over ``status``. With no status but a body (an ``event: error``
    that arrived mid-stream after a 200), the body's error type decides.
    """
    if exc is not None:
        return classify_exception(exc)
    if status is None:
        return _from_body_alone(error_labels(body)) if body else None
    if 200 <= status < 300:
        return None
    if status >= 500:
        return _server_status(status, error_labels(body))
    if status == 429:
        return ErrorClass.CLIENT if error_labels(body) & _NO_QUOTA else ErrorClass.RATE_LIMIT
    return _client_status(status, body)


def classify_exception(exc: BaseException) -> ErrorClass:
    """Timeouts (asyncio's and aiohttp's) before connection errors: aiohttp's are both."""
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError and aiohttp.ServerTimeoutError
        return ErrorClass.TIMEOUT
    if isinstance(exc, OSError | aiohttp.ClientError):
        # ClientConnectionError, a payload cut off mid-body, a refused connect.
        return ErrorClass.CONNECTION
    return ErrorClass.CLIENT  # a bug of ours or a bad request: never retried, never a fallback


def _server_status(status: int, labels: frozenset[str]) -> ErrorClass:
    if status in (503, 529) or labels & _OVERLOADED:
        return ErrorClass.OVERLOADED
    return ErrorClass.TIMEOUT if labels & _TIMEOUT else ErrorClass.SERVER


def _client_status(status: int, body: bytes | None) -> ErrorClass:
    if status < 400:
        # 1xx/3xx: tollhouse never follows redirects (they would carry the key elsewhere);
        # another attempt would get the same answer, and the fix is the config.
        return ErrorClass.CLIENT
    if status == 408:
        return ErrorClass.TIMEOUT
    if status == 409:
        return ErrorClass.SERVER  # lock timeout; the SDKs retry it too
    labels = error_labels(body)
    # OpenAI's code is specific (it also comes with 400/403); Anthropic's and Gemini's
    # generic not-found only means the model on a 404 to a generation call.
    if "model_not_found" in labels or (status == 404 and labels & _MODEL_GONE):
        return ErrorClass.MODEL_GONE
    return ErrorClass.CLIENT


def _from_body_alone(labels: frozenset[str]) -> ErrorClass | None:
    if not labels:
        return None
    for names, cls in (
        (_NO_QUOTA, ErrorClass.CLIENT),
        (_RATE_LIMIT, ErrorClass.RATE_LIMIT),
        (_OVERLOADED, ErrorClass.OVERLOADED),
        (_MODEL_GONE, ErrorClass.MODEL_GONE),
        (_TIMEOUT, ErrorClass.TIMEOUT),
        (_SERVER, ErrorClass.SERVER),
    ):
        if labels & names:
            return cls
    return ErrorClass.CLIENT


def error_labels(body: bytes | None) -> frozenset[str]:
    """The error's type, code and status strings, from any of the three error shapes."""
    err = error_object(body)
    if err is None:
        return frozenset()
    return frozenset(v for k in ("type", "code", "status") if isinstance(v := err.get(k), str))


def error_object(body: bytes | None) -> dict[str, Any] | None:
    """The ``error`` object of an error body (Gemini may wrap it in a one-item list)."""
    if not body or len(body) > MAX_ERROR_BODY:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict):
        return err
    # OpenAI Responses streams an error event flat: {"type": "error", "code": ...}.
    return data if data.get("type") == "error" else None
