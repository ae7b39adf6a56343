"""The wire dialects clients speak, behind one interface.

A dialect knows where its model name and stream flag live, where the client
put its key, how to make the upstream request meter-able, and how its errors
look. Everything here is plain data in, plain data out.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from tollhouse.errors import BadRequest, GatewayError
from tollhouse.ingress.fields import FieldError, Spec, check


@dataclass(slots=True)
class Call:
    """What the gateway needs to know about one client request."""

    model: str
    stream: bool
    # Path of the request relative to the API root, e.g. "/v1/chat/completions".
    path: str


class Dialect:
    """One wire format: OpenAI chat, OpenAI Responses, Anthropic, Gemini.

    A dialect owns every wire fact of its own: its paths, its headers, where its
    clients put keys, how a translated call is addressed, how its errors look.
    The registry (:mod:`tollhouse.ingress.registry`) lists the dialects; the
    request path asks them, it never names one.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # for people: "OpenAI Chat Completions"
    routes: ClassVar[tuple[str, ...]] = ()  # POST paths (aiohttp route syntax)
    spec: ClassVar[Spec] = {}  # the body's fields the gateway reads, typed (fields.py)
    # Where a provider that speaks this dialect gets a call translated from another
    # ("" : never a translation target). Formatted with {model} and {action}.
    native_path: ClassVar[str] = ""
    # Prefixes of this dialect's own request headers (not sent to another dialect's
    # provider) and answer headers (not shown to another dialect's client).
    request_headers: ClassVar[tuple[str, ...]] = ()
    answer_headers: ClassVar[tuple[str, ...]] = ()
    # Where its clients put their key (never forwarded: the route's own auth replaces it).
    auth_headers: ClassVar[tuple[str, ...]] = ("authorization",)
    # Path endings of its metered endpoints on any host (the interceptor's classifier).
    wire_suffixes: ClassVar[tuple[str, ...]] = ()
    # Paths whose errors (404, 405...) are answered in this dialect.
    path_prefixes: ClassVar[tuple[str, ...]] = ()

    def meters(self, path: str) -> bool:
        """Whether ``path`` (on the gateway) is one of this dialect's metered endpoints."""
        return path in self.routes

    def translated_target(self, model: str, stream: bool) -> tuple[str, str]:
        """(path, query) of a call translated into this dialect, for ``model``."""
        return self.native_path.format(model=model, action=""), ""

    def translated_payload(self, payload: dict[str, Any], stream: bool) -> None:
        """Adjust a body translated into this dialect, in place (e.g. ask for usage)."""

    def call(self, path: str, match: Mapping[str, str], payload: dict[str, Any]) -> Call:
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise FieldError("model", 'the request body needs a "model" string, e.g. "gpt-4o-mini"')
        check(payload, self.spec)
        return Call(model=model, stream=payload.get("stream") is True, path=path)

    def prepare(self, payload: dict[str, Any], call: Call, upstream_model: str) -> bool:
        """Adjust ``payload`` in place for the upstream; return True if the
        gateway asked for a usage chunk the client did not (hide it)."""
        if payload.get("model") != upstream_model:
            payload["model"] = upstream_model
        return False

    def upstream_path(self, call: Call, upstream_model: str) -> str:
        return call.path

    def client_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        auth = headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        raise NotImplementedError

    def stream_error(self, error: GatewayError) -> bytes:
        """An in-band error event that ends a stream already under way."""
        return b"data: " + json.dumps(self.error_body(error)).encode() + b"\n\n"

    def asked_for_usage(self, payload: dict[str, Any]) -> bool:
        """Whether a streaming client asked for a usage chunk (OpenAI chat only)."""
        return True


def render_error(dialect: Dialect, error: GatewayError) -> bytes:
    return json.dumps(dialect.error_body(error)).encode()


MAX_DEPTH = 128
"""Nesting deeper than this is refused: real bodies (JSON schemas in tools
included) stay far below, and deeper ones break recursive code further on."""
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON; send a finite number or null")


_DECODER = json.JSONDecoder(parse_constant=_not_json)


def parse_json_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a BadRequest that says what's wrong.

    Stricter than Python's json: NaN and Infinity, lone UTF-16 surrogates
    (``"\\ud800"``, which no encoder can write back) and nesting past
    :data:`MAX_DEPTH` are refused too.
    """
    if not body:
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        text = body.decode("utf-8-sig" if body.startswith(codecs.BOM_UTF8) else "utf-8")
        payload = _DECODER.decode(text)
    except RecursionError:
        raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError is one
        raise BadRequest(f"the request body is not valid JSON (UTF-8): {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object")
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:  # else it can't be that deep
        _check_depth(payload)
    if _ESCAPED_SURROGATE.search(body) is not None:
        _check_surrogates(payload)  # escaped pairs (emoji) are fine: only lone ones fail
    return payload


def _check_depth(payload: Any) -> None:
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def _check_surrogates(payload: Any) -> None:
    try:
        json.dumps(payload, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise BadRequest(
            "the request body holds a lone UTF-16 surrogate (such as \\ud800): "
            "not text any encoder can send on; send valid Unicode"
        ) from None
