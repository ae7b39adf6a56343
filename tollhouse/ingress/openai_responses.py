"""OpenAI Responses: ``POST /v1/responses`` (usage arrives in ``response.completed``)."""

from __future__ import annotations

from typing import Any

from tollhouse.errors import GatewayError
from tollhouse.ingress.base import Dialect
from tollhouse.ingress.fields import OPENAI_RESPONSES
from tollhouse.ingress.openai_chat import openai_error


class OpenAIResponses(Dialect):
    name = "openai-responses"
    label = "OpenAI Responses"
    routes = ("/v1/responses",)
    spec = OPENAI_RESPONSES
    native_path = "/v1/responses"
    request_headers = ("openai-", "x-stainless-")
    answer_headers = ("openai-", "x-ratelimit-")
    wire_suffixes = ("/responses",)

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return openai_error(error)
