"""Gemini Code Assist's envelope: each Gemini answer arrives as ``{"response": {...}}``.

``cloudcode-pa.googleapis.com/v1internal:generateContent`` (the Gemini CLI and
Code Assist with a Google login) wraps the ordinary generateContent answer,
chunk by chunk. This takes the wrapper off *the copy the meter reads*, so the
one Gemini meter of :mod:`tollhouse.metering` does the metering; the bytes
forwarded to the client are never touched.

>>> meter = UnwrappingMeter(stream_meter("gemini"), "response")
>>> meter.feed(b'data: {"response": {"usageMetadata": {"promptTokenCount": 3}}}\\n\\n')
b'data: {"response": {"usageMetadata": {"promptTokenCount": 3}}}\\n\\n'
>>> meter.result().usage.input_tokens
3
"""

from __future__ import annotations

import json
from typing import Any

from tollhouse.metering.base import StreamMeter
from tollhouse.metering.sse import SSEParser, parse_block
from tollhouse.metering.usage import Metered


class UnwrappingMeter:
    """A :class:`StreamMeter` that feeds ``inner`` the unwrapped events of an SSE stream."""

    def __init__(self, inner: StreamMeter, key: str) -> None:
        self._inner = inner
        self._key = key
        self._sse = SSEParser()

    def feed(self, chunk: bytes) -> bytes:
        for block in self._sse.feed_blocks(chunk):
            self._inner.feed(unwrap_event(block, self._key))
        return chunk

    def finish(self) -> bytes:
        for block in self._sse.flush_blocks():
            self._inner.feed(unwrap_event(block, self._key))
        self._inner.finish()
        return b""

    def result(self) -> Metered:
        return self._inner.result()

    @property
    def ended(self) -> bool:
        return self._inner.ended


def unwrap_event(block: bytes, key: str) -> bytes:
    """One SSE block with its JSON data unwrapped (unchanged if it isn't wrapped)."""
    event = parse_block(block)
    if event is None:
        return b""
    inner = _unwrap(_loads(event.data), key)
    if inner is None:
        return block
    return b"data: " + json.dumps(inner).encode() + b"\n\n"


def unwrap_body(body: bytes, key: str) -> bytes:
    """A whole JSON body (one envelope, or an array of them) unwrapped."""
    parsed = _loads(body)
    if isinstance(parsed, list):
        items = [_unwrap(item, key) for item in parsed]
        return json.dumps([i for i in items if i is not None]).encode()
    inner = _unwrap(parsed, key)
    return body if inner is None else json.dumps(inner).encode()


def _unwrap(value: Any, key: str) -> Any:
    if isinstance(value, dict) and isinstance(value.get(key), dict):
        return value[key]
    return None


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
