"""Streaming translation: upstream SSE bytes -> neutral events -> client SSE bytes.

Each dialect has a :class:`StreamDecoder` (its own SSE in, neutral
:data:`StreamEvent` objects out) and a :class:`StreamEncoder` (neutral events
in, its own SSE out). :class:`Pipeline` joins the target's decoder to the
source's encoder. Decoders frame bytes with the shared
:class:`~tollhouse.metering.sse.SSEParser`, so output never depends on how
the upstream chunked its bytes.

The stream's end: OpenAI and Anthropic mark it (``[DONE]``, ``message_stop``)
and their decoders emit :class:`Done`; Gemini just closes the connection, so
at :meth:`Pipeline.finish` a stream that reported its finish reason is ended
cleanly. A stream cut before its finish reason is left unterminated, so the
client can tell it was interrupted.

>>> from tollhouse.translate import stream_translator
>>> t = stream_translator("anthropic", "openai-chat", model="claude", include_usage=False)
>>> out = t.feed(b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}\\n\\n')
>>> b"message_start" in out and b"text_delta" in out
True
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

from tollhouse.metering.sse import SSEEvent, SSEParser
from tollhouse.translate.model import ErrorInfo, StopReason, Usage


@dataclass(frozen=True, slots=True)
class Start:
    """The upstream response began; ``id`` is its response id."""

    id: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolStart:
    """A tool call began; ``index`` counts tool calls from 0 in this response."""

    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArgs:
    """A fragment of a tool call's JSON arguments."""

    index: int
    fragment: str


@dataclass(frozen=True, slots=True)
class ToolEnd:
    index: int


@dataclass(frozen=True, slots=True)
class Finish:
    stop: StopReason
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """The usage known so far (cumulative: the latest replaces earlier ones)."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The upstream reported an error in the stream; nothing follows."""

    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Done:
    """The stream ended normally."""


StreamEvent = (
    Start | TextDelta | ToolStart | ToolArgs | ToolEnd | Finish | UsageUpdate | StreamFailed | Done
)


class StreamTranslator(Protocol):
    """Translates one streamed response: upstream bytes in, client bytes out."""

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    @property
    def ended(self) -> bool: ...

    @property
    def failure(self) -> ErrorInfo | None:
        """The error the stream ended with, if it failed."""
        ...


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class StreamEncoder(Protocol):
    def encode(self, event: StreamEvent) -> bytes: ...


class SSEDecoder(ABC):
    """A decoder fed through the shared SSE framer; subclasses read one event at a time."""

    def __init__(self) -> None:
        self._parser = SSEParser()

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._decode(self._parser.feed(chunk))

    def finish(self) -> list[StreamEvent]:
        return self._decode(self._parser.flush())

    def _decode(self, events: list[SSEEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            try:
                out += self.on_event(event)
            except RecursionError:  # an event nested too deep to translate: the stream failed
                out.append(malformed(event))
        return out

    @abstractmethod
    def on_event(self, event: SSEEvent) -> list[StreamEvent]: ...


def load_event(event: SSEEvent) -> dict[str, Any] | None:
    """An event's JSON object, or None when it is not one."""
    try:
        data = json.loads(event.data)
    except (ValueError, RecursionError):  # not JSON, or nested past what Python reads
        return None
    return data if isinstance(data, dict) else None


def malformed(event: SSEEvent) -> StreamFailed:
    head = event.data[:200].decode(errors="replace")
    return StreamFailed(ErrorInfo(502, "api_error", f"malformed upstream stream event: {head}"))


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def sse(data: Any, event: str | None = None, newline: bytes = b"\n") -> bytes:
    """One SSE event: an optional ``event:`` line, one ``data:`` line, a blank line."""
    head = b"event: " + event.encode() + newline if event else b""
    return head + b"data: " + dumps(data) + newline + newline


class Pipeline:
    """A :class:`StreamTranslator` made of a target decoder and a source encoder."""

    def __init__(self, decoder: StreamDecoder, encoder: StreamEncoder) -> None:
        self._decoder = decoder
        self._encoder = encoder
        self._finished = False
        self._closed = False
        self._done = False
        self._failure: ErrorInfo | None = None

    @property
    def ended(self) -> bool:
        """The client's end marker has gone out (a normal end, not a failure)."""
        return self._done

    @property
    def failure(self) -> ErrorInfo | None:
        return self._failure

    def feed(self, chunk: bytes) -> bytes:
        if self._closed:
            return b""
        return self._encode(self._decoder.feed(chunk))

    def finish(self) -> bytes:
        if self._closed:
            return b""
        out = self._encode(self._decoder.finish())
        if self._finished and not self._closed:
            out += self._encode([Done()])
        self._closed = True
        return out

    def _encode(self, events: list[StreamEvent]) -> bytes:
        out = bytearray()
        for event in events:
            if self._closed:
                break
            out += self._encoder.encode(event)
            if isinstance(event, Finish):
                self._finished = True
            elif isinstance(event, Done | StreamFailed):
                self._closed, self._done = True, isinstance(event, Done)
                self._failure = event.error if isinstance(event, StreamFailed) else None
        return bytes(out)


class Passthrough:
    """The identity translator: bytes go out exactly as they came in."""

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""

    @property
    def ended(self) -> bool:
        return False  # it can't know; the meter of the same bytes does

    @property
    def failure(self) -> ErrorInfo | None:
        return None
