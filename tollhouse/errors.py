"""A small error tree. Each gateway error carries its HTTP status and a kind.

The kind is dialect-neutral; :mod:`tollhouse.ingress` renders it in the
client's own error shape (OpenAI, Anthropic or Gemini) in one place.
"""

from __future__ import annotations


class TollhouseError(Exception):
    """Root of every error tollhouse raises on purpose."""


class ConfigError(TollhouseError):
    """The config file is wrong; the message names the key and the fix."""


class GatewayError(TollhouseError):
    """An error answered to an HTTP client, in its dialect."""

    status = 500
    kind = "api_error"  # neutral: invalid_request, authentication, not_found, ...

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BadRequest(GatewayError):
    status = 400
    kind = "invalid_request"


class UnknownModel(GatewayError):
    status = 404
    kind = "not_found"


class MissingKey(GatewayError):
    status = 401
    kind = "authentication"


class NoSuchEndpoint(GatewayError):
    status = 404
    kind = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    kind = "invalid_request"


class Forbidden(GatewayError):
    status = 403
    kind = "permission"


class UpstreamPathNotFound(GatewayError):
    """A provider answered 404 without its API's own error: the URL is wrong, not the call."""

    status = 502
    kind = "api_error"


class ModelRefused(GatewayError):
    """Every candidate is blocked (the kill switch) or denied to the project: not retried."""

    status = 403
    kind = "permission"


class UnsupportedMediaType(GatewayError):
    """A JSON endpoint got another content type (a form or text/plain post, say)."""

    status = 415
    kind = "invalid_request"


class BodyTooLarge(GatewayError):
    status = 413
    kind = "request_too_large"


class RequestTimeout(GatewayError):
    """The client stopped sending its request body (server.client_body_timeout_s)."""

    status = 408
    kind = "invalid_request"


class CapacityExhausted(GatewayError):
    """No capacity within the request's deadline, and no fallback left."""

    status = 429
    kind = "rate_limit"


class BudgetExceeded(GatewayError):
    """A hard project budget would be overspent: refused before anything is sent.

    402, not 429: it is Anthropic's own status for billing errors, and the
    SDKs retry 429s but not 402s; waiting seconds doesn't refill a budget.
    """

    status = 402
    kind = "budget_exceeded"


class BudgetStoreUnavailable(GatewayError):
    """Shared budgets' store (the Postgres ledger) can't be reached: a budgeted
    request is refused rather than sent unreserved (a hard budget would not hold)."""

    status = 503
    kind = "api_error"


class InternalError(GatewayError):
    """A bug in tollhouse itself: answered in the client's dialect, with a ledger row,
    never as aiohttp's bare text 500."""

    status = 500
    kind = "api_error"


class UpstreamUnavailable(GatewayError):
    """The upstream could not be reached or broke before answering."""

    status = 502
    kind = "api_error"
    cause = "no connection"
    """Short and key-free (why its provider was ejected): "no connection (ClientConnectorError)"."""


class UpstreamTimeout(UpstreamUnavailable):
    status = 504


class NoCandidateServed(GatewayError):
    """Every candidate failed or was skipped; the message names each one and why.

    The status is the last upstream answer's (a 503 stays a 503 for the SDK),
    and no model is named as having served it.
    """

    KINDS = {401: "authentication", 403: "permission", 404: "not_found", 429: "rate_limit"}

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status if 400 <= status < 600 else 502
        self.kind = self.KINDS.get(self.status, "api_error")
