"""Anthropic Messages: ``POST /v1/messages``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tollhouse.errors import GatewayError
from tollhouse.ingress.base import Dialect
from tollhouse.ingress.fields import ANTHROPIC

ANTHROPIC_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "budget_exceeded": "billing_error",
}


class AnthropicMessages(Dialect):
    name = "anthropic"
    label = "Anthropic Messages"
    routes = ("/v1/messages",)
    spec = ANTHROPIC
    native_path = "/v1/messages"
    request_headers = ("anthropic-", "x-stainless-")
    answer_headers = ("anthropic-",)
    auth_headers = ("x-api-key", "authorization")
    wire_suffixes = ("/messages",)
    path_prefixes = ("/v1/messages",)

    def client_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or super().client_key(headers, query)

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {
                "type": ANTHROPIC_ERROR_TYPES.get(error.kind, "api_error"),
                "message": error.message,
            },
        }

    def stream_error(self, error: GatewayError) -> bytes:
        return b"event: error\ndata: " + json.dumps(self.error_body(error)).encode() + b"\n\n"
