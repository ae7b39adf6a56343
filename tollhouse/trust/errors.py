"""The trust endpoints' own errors: gateway errors with their status."""

from __future__ import annotations

from typing import Any

from tollhouse.errors import GatewayError


class NotFound(GatewayError):
    status = 404
    kind = "not_found"


class Conflict(GatewayError):
    """409: the Idempotency-Key is still in flight, or the action was reported already."""

    status = 409
    kind = "conflict"


class Unprocessable(GatewayError):
    """422: the Idempotency-Key was used before with another payload."""

    status = 422
    kind = "invalid_request"


class NotAnOperator(GatewayError):
    """401: approving a step is a person's call, and this caller has no operator token."""

    status = 401
    kind = "operator_token_required"


class Held(GatewayError):
    """423: the gate holds an irreversible action on a tainted trajectory."""

    status = 423
    kind = "held"

    def __init__(self, message: str, decision: dict[str, Any]) -> None:
        super().__init__(message)
        self.decision = decision
