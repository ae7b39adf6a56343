"""What an intercepted request is: its wire dialect, model and stream flag.

Plain data in (path and body), plain data out. The dialect comes from the
path, the same endpoints the gateway serves, wherever the API root sits
(``/v1/chat/completions``, ``/api/v1/chat/completions`` on OpenRouter,
``/backend-api/codex/responses`` on chatgpt.com, Vertex's
``.../publishers/google/models/M:generateContent``). Anything else on an LLM
host (model lists, token counting, files) passes through unmetered.

>>> call = classify("POST", "/v1/chat/completions", b'{"model": "gpt-4o", "stream": true}')
>>> call.dialect, call.model, call.stream
('openai-chat', 'gpt-4o', True)
>>> classify("GET", "/v1/models", b"") is None
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tollhouse.ingress import DIALECTS, Call

# Path endings of the metered endpoints, as each dialect names them: the first wins.
SUFFIXES = tuple((s, d.name) for d in DIALECTS.values() for s in d.wire_suffixes)
# Gemini Code Assist (cloudcode-pa): /v1internal:generateContent, answers in {"response": ...}.
CODE_ASSIST_PATH = "/v1internal:"
CODE_ASSIST_ENVELOPE = "response"


@dataclass(slots=True)
class InterceptedCall:
    """One metered request seen on the wire."""

    dialect: str
    model: str | None
    stream: bool
    payload: dict[str, Any] | None  # the parsed JSON body, when it was one
    envelope: str | None = None  # the key each answer is wrapped in (Gemini Code Assist)


def dialect_of(path: str) -> str | None:
    """The wire dialect of a request path (query string ignored), or None."""
    bare = path.split("?", 1)[0].rstrip("/")
    for suffix, dialect in SUFFIXES:
        if bare.endswith(suffix):
            return dialect
    return None


def classify(method: str, path: str, body: bytes) -> InterceptedCall | None:
    """The call a request makes, or None when it is not a metered endpoint."""
    if method.upper() != "POST":
        return None
    dialect = dialect_of(path)
    if dialect is None:
        return None
    payload = _json_object(body)
    model = payload.get("model") if payload else None
    envelope = None
    if dialect == "gemini":
        model = _gemini_model(path) or model
        stream = ":streamGenerateContent" in path
        envelope = CODE_ASSIST_ENVELOPE if CODE_ASSIST_PATH in path else None
    else:
        stream = payload is not None and payload.get("stream") is True
    named = model if isinstance(model, str) else None
    return InterceptedCall(dialect, named, stream, payload, envelope)


def ask_for_usage(call: InterceptedCall) -> bytes | None:
    """A body asking an OpenAI chat stream for its usage chunk, or None if none is needed.

    Chat streams carry usage only when asked (``stream_options.include_usage``);
    the gateway asks and hides the chunk again, and so does the interceptor,
    with the ingress dialect's own rule.
    """
    if call.dialect != "openai-chat" or not call.stream or not call.payload or not call.model:
        return None
    spec = Call(model=call.model, stream=True, path="")
    if not DIALECTS["openai-chat"].prepare(call.payload, spec, call.model):
        return None
    return json.dumps(call.payload, ensure_ascii=False, separators=(",", ":")).encode()


def _json_object(body: bytes) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return parsed if isinstance(parsed, dict) else None


def _gemini_model(path: str) -> str | None:
    # .../models/gemini-2.5-flash:generateContent; Code Assist's v1internal:... has none.
    head = path.split("?", 1)[0].rpartition(":")[0]
    if "/models/" not in head:
        return None
    return head.rsplit("/models/", 1)[1] or None
