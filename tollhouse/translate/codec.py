"""The codec interface, the registry of dialects, and the public translation calls.

A codec converts one wire dialect to and from the neutral model
(:mod:`tollhouse.translate.model`); translating from A to B is A's decode
followed by B's encode. Built-in codecs register through :func:`register`,
as a plugin's would.

>>> body = translate_request(
...     "openai-chat", "anthropic",
...     {"model": "gpt-5.5", "messages": [{"role": "user", "content": "Hi"}]},
...     model="claude-opus-4-8", stream=False,
... )
>>> body["max_tokens"], body["messages"]
(4096, [{'role': 'user', 'content': 'Hi'}])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Protocol

from tollhouse.translate.anthropic import AnthropicCodec
from tollhouse.translate.gemini import GeminiCodec
from tollhouse.translate.model import (
    ErrorInfo,
    Request,
    Response,
    Untranslatable,
    kind_for_status,
)
from tollhouse.translate.openai_chat import OpenAIChatCodec
from tollhouse.translate.openai_responses import OpenAIResponsesCodec
from tollhouse.translate.stream import (
    Passthrough,
    Pipeline,
    StreamDecoder,
    StreamEncoder,
    StreamTranslator,
)


class Codec(Protocol):
    """One wire dialect, to and from the neutral model."""

    name: str

    def decode_request(self, payload: dict[str, Any]) -> Request: ...

    def encode_request(self, request: Request, *, model: str, stream: bool) -> dict[str, Any]: ...

    def decode_response(self, body: dict[str, Any]) -> Response: ...

    def encode_response(self, response: Response, *, model: str) -> dict[str, Any]: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def stream_encoder(self, *, model: str, include_usage: bool) -> StreamEncoder: ...

    def decode_error(self, status: int, body: Any) -> ErrorInfo | None:
        """The error in an upstream error body; None when it has none in this shape."""
        ...

    def encode_error(self, error: ErrorInfo) -> dict[str, Any]: ...

    def repair(self, payload: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """A native request a fallback's turn made unacceptable to this dialect's
        providers, made acceptable, and what was left out (usually unchanged, ())."""
        ...


def build(codecs: tuple[Codec, ...]) -> Mapping[str, Codec]:
    """A read-only table of ``codecs`` by dialect (tests build one with a codec added)."""
    return MappingProxyType({c.name: c for c in codecs})


CODECS = build((OpenAIChatCodec(), OpenAIResponsesCodec(), AnthropicCodec(), GeminiCodec()))


def codec(dialect: str, codecs: Mapping[str, Codec] = CODECS) -> Codec:
    """The codec for ``dialect``; :class:`Untranslatable` when there is none, so a
    fallback chain skips a provider it cannot translate to."""
    try:
        return codecs[dialect]
    except KeyError:
        known = ", ".join(sorted(codecs))
        raise Untranslatable(f"translation to or from {dialect} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class Translated:
    """A translated request body and what translation left out (each one named)."""

    body: dict[str, Any]
    omitted: tuple[str, ...] = ()


def translate_request(
    source: str, target: str, payload: dict[str, Any], *, model: str, stream: bool
) -> dict[str, Any]:
    """The request body for ``target`` (Gemini's model and stream flag go in the URL)."""
    return translate_request_noted(source, target, payload, model=model, stream=stream).body


def translate_request_noted(
    source: str, target: str, payload: dict[str, Any], *, model: str, stream: bool
) -> Translated:
    """As :func:`translate_request`, with the omissions to name to the client."""
    if source == target:
        return Translated(payload)
    request = codec(source).decode_request(payload)
    body = codec(target).encode_request(request, model=model, stream=stream)
    return Translated(body, tuple(request.omitted))


def repair_native(dialect: str, payload: dict[str, Any]) -> Translated:
    """A same-dialect request as its provider will take it after a fallback's turn
    (e.g. Anthropic thinking off for a tool loop another provider made)."""
    if dialect not in CODECS:
        return Translated(payload)
    body, omitted = CODECS[dialect].repair(payload)
    return Translated(body, omitted)


def omitted_header(omitted: tuple[str, ...] | list[str]) -> str:
    """The ``X-Tollhouse-Translation-Omitted`` value: ASCII, one line, bounded."""
    text = "; ".join(omitted).encode("ascii", "replace").decode()
    return " ".join(text.split())[:1000]


OMITTED_HEADER = "X-Tollhouse-Translation-Omitted"


def translate_response(
    source: str, target: str, body: dict[str, Any], *, model: str
) -> dict[str, Any]:
    """A non-streaming ``target`` response re-expressed in the ``source`` (client) dialect.

    Raises :class:`~tollhouse.translate.model.GenerationFailed` when the upstream's
    generation failed: render it with :func:`failure_body`.
    """
    if source == target:
        return body
    response = codec(target).decode_response(body)
    return codec(source).encode_response(response, model=model)


def stream_translator(
    source: str, target: str, *, model: str, include_usage: bool
) -> StreamTranslator:
    """A translator for one ``target`` SSE stream, emitting ``source`` SSE.

    ``include_usage``: the OpenAI client asked for ``stream_options.include_usage``.
    """
    if source == target:
        return Passthrough()
    decoder = codec(target).stream_decoder()
    return Pipeline(decoder, codec(source).stream_encoder(model=model, include_usage=include_usage))


def error_translate(source: str, target: str, status: int, body: bytes) -> bytes:
    """An upstream ``target`` error body in the client's error shape (the status stays)."""
    if source == target:
        return body
    error = _read_error(codec(target), status, body)
    return json.dumps(codec(source).encode_error(error), ensure_ascii=False).encode()


def failure_body(source: str, error: ErrorInfo) -> bytes:
    """A failed generation as an error body in the client's dialect."""
    return json.dumps(codec(source).encode_error(error), ensure_ascii=False).encode()


def _read_error(target: Codec, status: int, body: bytes) -> ErrorInfo:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    error = target.decode_error(status, parsed) if parsed is not None else None
    if error is not None:
        return error
    text = body.decode(errors="replace").strip()[:1000]
    return ErrorInfo(status, kind_for_status(status), text or _phrase(status))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
