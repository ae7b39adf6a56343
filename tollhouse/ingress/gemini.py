"""Gemini: ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollhouse.errors import BadRequest, GatewayError
from tollhouse.ingress.base import Call, Dialect
from tollhouse.ingress.fields import GEMINI, check
from tollhouse.providers.gemini import gemini_model_error

GEMINI_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    402: "RESOURCE_EXHAUSTED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ACTIONS = {"generateContent": False, "streamGenerateContent": True}


class Gemini(Dialect):
    name = "gemini"
    label = "Gemini generateContent"
    routes = ("/{version:v1beta|v1|v1alpha}/models/{target}",)
    spec = GEMINI
    native_path = "/v1beta/models/{model}:{action}"
    request_headers = ("x-goog-",)
    auth_headers = ("x-goog-api-key",)  # or ?key=, which never goes upstream (upstream.py)
    wire_suffixes = (":generateContent", ":streamGenerateContent")
    path_prefixes = ("/v1beta/", "/v1alpha/", "/v1/models/")

    def meters(self, path: str) -> bool:
        return path.startswith(self.path_prefixes) and path.endswith(
            ("generateContent", "GenerateContent")
        )

    def translated_target(self, model: str, stream: bool) -> tuple[str, str]:
        action = "streamGenerateContent" if stream else "generateContent"
        return self.native_path.format(model=model, action=action), "alt=sse" if stream else ""

    def call(self, path: str, match: Mapping[str, str], payload: dict[str, Any]) -> Call:
        model, _, action = match["target"].partition(":")
        if action not in ACTIONS:
            raise BadRequest(
                f"unsupported Gemini method {action or '(none)'!r}; "
                "use :generateContent or :streamGenerateContent"
            )
        if not model:
            raise BadRequest("the URL needs a model: /v1beta/models/MODEL:generateContent")
        problem = gemini_model_error(model)  # it goes into the upstream URL
        if problem is not None:
            raise BadRequest(problem)
        check(payload, self.spec)
        return Call(model=model.removeprefix("models/"), stream=ACTIONS[action], path=path)

    def prepare(self, payload: dict[str, Any], call: Call, upstream_model: str) -> bool:
        return False  # the model lives in the URL; the body goes through untouched

    def upstream_path(self, call: Call, upstream_model: str) -> str:
        # Rebuilt from checked parts, never from the client's path: the version is the
        # route's (v1beta|v1|v1alpha), the action follows the stream flag.
        version = call.path.split("/", 2)[1]
        action = "streamGenerateContent" if call.stream else "generateContent"
        return f"/{version}/models/{upstream_model.removeprefix('models/')}:{action}"

    def client_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return headers.get("x-goog-api-key") or query.get("key") or None

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return {
            "error": {
                "code": error.status,
                "message": error.message,
                "status": GEMINI_STATUSES.get(error.status, "INTERNAL"),
            }
        }
