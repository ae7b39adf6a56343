"""Each provider's response headers and error responses (status, headers, body).

Three styles cover the six flavors: ``openai`` (also xAI, OpenRouter and
compat), ``anthropic`` and ``gemini``. Each maps an error kind (a fault's
error, or ``invalid_request`` for a malformed call) to the provider's status
code, JSON body and rate-limit headers, and gives the headers of a success
(request id and a healthy rate-limit budget).

>>> style = ERROR_STYLES["anthropic"]
>>> style.render("overloaded", ErrorContext("claude-x", 1.0, "req_1", NOW)).status
529
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

NOW = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed time for examples and tests."""

RPM_LIMIT = 500
TPM_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class ErrorContext:
    model: str
    retry_after: float
    request_id: str
    now: datetime
    message: str | None = None
    """Detail for ``invalid_request``."""


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ErrorStyle(Protocol):
    def render(self, kind: str, ctx: ErrorContext) -> ErrorResponse: ...

    def ok_headers(self, request_id: str, now: datetime) -> dict[str, str]: ...


def go_duration(seconds: float) -> str:
    """OpenAI's reset format: ``6m0s``, ``1s``, ``250ms``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def proto_duration(seconds: float) -> str:
    """google.protobuf.Duration JSON: ``22s`` or ``1.500s``."""
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:.3f}s"


_OPENAI = {
    "rate_limit": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-simulator on requests per min "
        "(RPM): Limit 500, Used 500, Requested 1. Please try again in {retry}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    "insufficient_quota": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "server_error": (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "overloaded": (
        503,
        "server_error",
        None,
        "The engine is currently overloaded, please try again later.",
    ),
    "not_found": (
        404,
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    "invalid_request": (400, "invalid_request_error", None, "{message}"),
}


class OpenAIErrors:
    """``{"error": {"message", "type", "param", "code"}}`` plus x-ratelimit headers."""

    def render(self, kind: str, ctx: ErrorContext) -> ErrorResponse:
        status, type_, code, template = _OPENAI[kind]
        message = template.format(
            model=ctx.model, retry=go_duration(ctx.retry_after), message=ctx.message
        )
        body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
        headers = {"x-request-id": ctx.request_id}
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx.retry_after))
        return ErrorResponse(status, body, headers)

    def ok_headers(self, request_id: str, now: datetime) -> dict[str, str]:
        return {
            "x-request-id": request_id,
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
            "x-ratelimit-limit-requests": str(RPM_LIMIT),
            "x-ratelimit-remaining-requests": str(RPM_LIMIT - 1),
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": str(TPM_LIMIT),
            "x-ratelimit-remaining-tokens": str(TPM_LIMIT - 1),
            "x-ratelimit-reset-tokens": "1ms",
        }

    @staticmethod
    def rate_limit_headers(retry_after: float) -> dict[str, str]:
        reset = go_duration(retry_after)
        return {
            "retry-after": str(math.ceil(retry_after)),
            "retry-after-ms": str(round(retry_after * 1000)),
            "x-ratelimit-limit-requests": str(RPM_LIMIT),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-limit-tokens": str(TPM_LIMIT),
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": reset,
        }


_ANTHROPIC = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 500 requests "
        "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    "insufficient_quota": (
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits.",
    ),
    "server_error": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "not_found": (404, "not_found_error", "model: {model}"),
    "invalid_request": (400, "invalid_request_error", "{message}"),
}


class AnthropicErrors:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""

    def render(self, kind: str, ctx: ErrorContext) -> ErrorResponse:
        status, type_, template = _ANTHROPIC[kind]
        message = template.format(model=ctx.model, message=ctx.message)
        body = {
            "type": "error",
            "error": {"type": type_, "message": message},
            "request_id": ctx.request_id,
        }
        headers = {"request-id": ctx.request_id}
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx.retry_after, ctx.now))
        return ErrorResponse(status, body, headers)

    def ok_headers(self, request_id: str, now: datetime) -> dict[str, str]:
        reset = (now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "request-id": request_id,
            "anthropic-ratelimit-requests-limit": str(RPM_LIMIT),
            "anthropic-ratelimit-requests-remaining": str(RPM_LIMIT - 1),
            "anthropic-ratelimit-requests-reset": reset,
        }

    @staticmethod
    def rate_limit_headers(retry_after: float, now: datetime) -> dict[str, str]:
        reset = (now + timedelta(seconds=retry_after)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"retry-after": str(math.ceil(retry_after))}
        for kind, limit in (
            ("requests", RPM_LIMIT),
            ("tokens", TPM_LIMIT),
            ("input-tokens", TPM_LIMIT),
            ("output-tokens", TPM_LIMIT // 5),
        ):
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{kind}-remaining"] = "0"
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset
        return headers


_GEMINI = {
    "rate_limit": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. "
        "Please retry in {retry}.",
    ),
    "insufficient_quota": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "server_error": (500, "INTERNAL", "An internal error has occurred. Please retry."),
    "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "not_found": (
        404,
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    ),
    "invalid_request": (400, "INVALID_ARGUMENT", "{message}"),
}


class GeminiErrors:
    """``{"error": {"code", "message", "status", "details"}}``; no rate-limit headers."""

    def render(self, kind: str, ctx: ErrorContext) -> ErrorResponse:
        status, code, template = _GEMINI[kind]
        retry = proto_duration(ctx.retry_after)
        message = template.format(model=ctx.model, retry=retry, message=ctx.message)
        error: dict[str, Any] = {"code": status, "message": message, "status": code}
        if status == 429:
            error["details"] = self._quota_details(
                ctx.model, retry if kind == "rate_limit" else None
            )
        return ErrorResponse(status, {"error": error})

    def ok_headers(self, request_id: str, now: datetime) -> dict[str, str]:
        return {}

    @staticmethod
    def _quota_details(model: str, retry: str | None) -> list[dict[str, Any]]:
        violation = {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
            "quotaDimensions": {"location": "global", "model": model},
            "quotaValue": str(RPM_LIMIT),
        }
        details: list[dict[str, Any]] = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}
        ]
        if retry is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry}
            )
        return details


ERROR_STYLES: dict[str, ErrorStyle] = {
    "openai": OpenAIErrors(),
    "anthropic": AnthropicErrors(),
    "gemini": GeminiErrors(),
}
