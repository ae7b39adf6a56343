"""OpenAI Chat Completions: ``POST /v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from tollhouse.errors import GatewayError
from tollhouse.ingress.base import Call, Dialect
from tollhouse.ingress.fields import OPENAI_CHAT

OPENAI_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "requests",
    "budget_exceeded": "insufficient_quota",
}
OPENAI_ERROR_CODES = {
    "rate_limit": "rate_limit_exceeded",
    "authentication": "missing_api_key",
    "not_found": "model_not_found",
    "request_too_large": "request_too_large",
    "budget_exceeded": "budget_exceeded",
}


def openai_error(error: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": OPENAI_ERROR_TYPES.get(error.kind, "api_error"),
            # The offending field's path, as OpenAI's own errors name it.
            "param": getattr(error, "param", None),
            "code": OPENAI_ERROR_CODES.get(error.kind),
        }
    }


class OpenAIChat(Dialect):
    name = "openai-chat"
    label = "OpenAI Chat Completions"
    routes = ("/v1/chat/completions",)
    spec = OPENAI_CHAT
    native_path = "/v1/chat/completions"
    request_headers = ("openai-", "x-stainless-")
    answer_headers = ("openai-", "x-ratelimit-")
    wire_suffixes = ("/chat/completions",)

    def translated_payload(self, payload: dict[str, Any], stream: bool) -> None:
        if stream:
            payload["stream_options"] = {"include_usage": True}  # metered from the stream

    def prepare(self, payload: dict[str, Any], call: Call, upstream_model: str) -> bool:
        super().prepare(payload, call, upstream_model)
        if not call.stream:
            return False
        options = payload.get("stream_options")  # typed by OPENAI_CHAT at the gateway's edge
        if isinstance(options, dict) and options.get("include_usage") is True:
            return False
        if options is not None and not isinstance(options, dict):
            return False  # the interceptor's untyped call: the provider's to refuse, untouched
        # Usage only arrives in a stream when asked for; ask, and hide it again.
        payload["stream_options"] = {**(options or {}), "include_usage": True}
        return True

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return openai_error(error)

    def asked_for_usage(self, payload: dict[str, Any]) -> bool:
        options = payload.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True
