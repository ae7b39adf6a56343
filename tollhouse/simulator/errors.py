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

from .quota import Budget, Verdict

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
    quota: Verdict | None = None
    """The quota's rejection behind a ``rate_limit`` (None: an injected fault)."""


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ErrorStyle(Protocol):
    def render(self, kind: str, ctx: ErrorContext) -> ErrorResponse: ...

    def ok_headers(
        self, request_id: str, now: datetime, quota: Verdict | None = None
    ) -> dict[str, str]: ...


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
        "Rate limit reached for {model} in organization org-simulator on {quota}. "
        "Please try again in {retry}. "
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
            model=ctx.model,
            retry=go_duration(ctx.retry_after),
            message=ctx.message,
            quota=_openai_quota_text(ctx.quota),
        )
        body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
        headers = {"x-request-id": ctx.request_id}
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx.retry_after, ctx.quota))
        return ErrorResponse(status, body, headers)

    def ok_headers(
        self, request_id: str, now: datetime, quota: Verdict | None = None
    ) -> dict[str, str]:
        return {
            "x-request-id": request_id,
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
            **_openai_budget("requests", _HEALTHY_REQUESTS),
            **_openai_budget("tokens", _HEALTHY_TOKENS),
            **_openai_quota_headers(quota),
        }

    @staticmethod
    def rate_limit_headers(retry_after: float, quota: Verdict | None = None) -> dict[str, str]:
        """A 429's headers: the wait, and the budgets (quota's, or exhausted ones for a fault)."""
        retry_ms = max(1, math.ceil(retry_after * 1000)) if retry_after > 0 else 0
        headers = {"retry-after": str(math.ceil(retry_after)), "retry-after-ms": str(retry_ms)}
        if quota is None:  # an injected fault: both budgets spent until retry-after
            headers.update(_openai_budget("requests", Budget(RPM_LIMIT, 0, retry_after)))
            headers.update(_openai_budget("tokens", Budget(TPM_LIMIT, 0, retry_after)))
        else:
            headers.update(_openai_budget("requests", _HEALTHY_REQUESTS))
            headers.update(_openai_budget("tokens", _HEALTHY_TOKENS))
            headers.update(_openai_quota_headers(quota))
        return headers


_HEALTHY_REQUESTS = Budget(RPM_LIMIT, RPM_LIMIT - 1, 0.12)
_HEALTHY_TOKENS = Budget(TPM_LIMIT, TPM_LIMIT - 1, 0.001)
"""What a dimension without an enforced quota reports."""


def _openai_budget(dimension: str, budget: Budget) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{dimension}": str(budget.limit),
        f"x-ratelimit-remaining-{dimension}": str(budget.remaining),
        f"x-ratelimit-reset-{dimension}": go_duration(budget.reset_s),
    }


def _openai_quota_headers(quota: Verdict | None) -> dict[str, str]:
    """The enforced quota's budgets; dimensions it does not limit keep their defaults."""
    headers: dict[str, str] = {}
    if quota is not None and quota.requests is not None:
        headers.update(_openai_budget("requests", quota.requests))
    if quota is not None and quota.tokens is not None:
        headers.update(_openai_budget("tokens", quota.tokens))
    return headers


def _openai_quota_text(quota: Verdict | None) -> str:
    if quota is None:
        return "requests per min (RPM): Limit 500, Used 500, Requested 1"
    if quota.exceeded == "tokens" and quota.tokens is not None:
        t, asked = quota.tokens, quota.requested_tokens
        used = t.limit - t.remaining
        return f"tokens per min (TPM): Limit {t.limit}, Used {used}, Requested {asked}"
    limit = quota.requests.limit if quota.requests is not None else RPM_LIMIT
    return f"requests per min (RPM): Limit {limit}, Used {limit}, Requested 1"


_ANTHROPIC = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of {limit} "
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
        limit = _anthropic_limit_text(ctx.quota)
        message = template.format(model=ctx.model, message=ctx.message, limit=limit)
        body = {
            "type": "error",
            "error": {"type": type_, "message": message},
            "request_id": ctx.request_id,
        }
        headers = {"request-id": ctx.request_id}
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx.retry_after, ctx.now, ctx.quota))
        return ErrorResponse(status, body, headers)

    def ok_headers(
        self, request_id: str, now: datetime, quota: Verdict | None = None
    ) -> dict[str, str]:
        return {
            "request-id": request_id,
            **_anthropic_budget("requests", Budget(RPM_LIMIT, RPM_LIMIT - 1, 1.0), now),
            **_anthropic_quota_headers(quota, now),
        }

    @staticmethod
    def rate_limit_headers(
        retry_after: float, now: datetime, quota: Verdict | None = None
    ) -> dict[str, str]:
        """A 429's headers: the wait, and the budgets (quota's, or exhausted ones for a fault)."""
        headers = {"retry-after": str(math.ceil(retry_after))}
        if quota is not None:
            return headers | _anthropic_quota_headers(quota, now)
        for kind, limit in (
            ("requests", RPM_LIMIT),
            ("tokens", TPM_LIMIT),
            ("input-tokens", TPM_LIMIT),
            ("output-tokens", TPM_LIMIT // 5),
        ):
            headers.update(_anthropic_budget(kind, Budget(limit, 0, retry_after), now))
        return headers


def rfc3339_after(now: datetime, seconds: float) -> str:
    """``now + seconds`` rounded up to a whole second, as Anthropic's resets are written."""
    at = now + timedelta(seconds=seconds)
    if at.microsecond:
        at = at.replace(microsecond=0) + timedelta(seconds=1)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _anthropic_budget(kind: str, budget: Budget, now: datetime) -> dict[str, str]:
    return {
        f"anthropic-ratelimit-{kind}-limit": str(budget.limit),
        f"anthropic-ratelimit-{kind}-remaining": str(budget.remaining),
        f"anthropic-ratelimit-{kind}-reset": rfc3339_after(now, budget.reset_s),
    }


def _anthropic_quota_headers(quota: Verdict | None, now: datetime) -> dict[str, str]:
    headers: dict[str, str] = {}
    if quota is not None and quota.requests is not None:
        headers.update(_anthropic_budget("requests", quota.requests, now))
    if quota is not None and quota.tokens is not None:
        for kind in ("tokens", "input-tokens"):
            headers.update(_anthropic_budget(kind, quota.tokens, now))
    return headers


def _anthropic_limit_text(quota: Verdict | None) -> str:
    if quota is not None and quota.exceeded == "tokens" and quota.tokens is not None:
        return f"{quota.tokens.limit} input tokens"
    if quota is not None and quota.requests is not None:
        return f"{quota.requests.limit} requests"
    return f"{RPM_LIMIT} requests"


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
                ctx.model, retry if kind == "rate_limit" else None, ctx.quota
            )
        return ErrorResponse(status, {"error": error})

    def ok_headers(
        self, request_id: str, now: datetime, quota: Verdict | None = None
    ) -> dict[str, str]:
        return {}

    @staticmethod
    def _quota_details(
        model: str, retry: str | None, quota: Verdict | None
    ) -> list[dict[str, Any]]:
        metric, quota_id, limit = (
            "generate_content_requests",
            "GenerateRequestsPerMinutePerProjectPerModel",
            RPM_LIMIT,
        )
        if quota is not None and quota.exceeded == "tokens" and quota.tokens is not None:
            metric, quota_id, limit = (
                "generate_content_input_token_count",
                "GenerateContentInputTokensPerModelPerMinute",
                quota.tokens.limit,
            )
        elif quota is not None and quota.requests is not None:
            limit = quota.requests.limit
        violation = {
            "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": model},
            "quotaValue": str(limit),
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
