"""Gemini ``generateContent`` / ``streamGenerateContent`` usage.

``promptTokenCount`` includes ``cachedContentTokenCount``; thoughts are
billed as output but reported apart from ``candidatesTokenCount``, so output
is their sum; ``toolUsePromptTokenCount`` is extra input (genai-prices' Google
extractor adds it to input too). Every streamed chunk carries the running
``usageMetadata``; the last one wins.

Streams come as SSE (``?alt=sse``) or, without it, as one JSON array sent in
pieces; the first non-blank byte tells them apart. For SSE the meter only
remembers the last event with usage and parses it when a result is asked
for; for arrays it holds the undecoded tail and decodes values lazily.

>>> GeminiMeter.meter_body(b'{"usageMetadata": {"promptTokenCount": 9, '
...     b'"candidatesTokenCount": 2, "thoughtsTokenCount": 5}}').usage.output_tokens
7
"""

from __future__ import annotations

import re
from typing import Any

from tollhouse.metering import exactjson
from tollhouse.metering.base import DialectMeter, SSEMeter, Tally
from tollhouse.metering.fields import as_dict, as_int, as_list, as_str, describe_error
from tollhouse.metering.jsonstream import JSONArrayScanner
from tollhouse.metering.sse import parse_block
from tollhouse.metering.usage import Metered, Usage

_USAGE_KEY = b'"usageMetadata"'
_ERROR_KEY = b'"error"'
_FINISHED = re.compile(rb'"finishReason"\s*:\s*"')
_JSON_START = (ord("["), ord("{"))
# Decode held array text once this much new arrives, to bound memory without
# re-scanning a large unfinished value (inline image data) on every chunk.
_ARRAY_BATCH = 1024 * 1024


def gemini_usage(raw: dict[str, Any]) -> Usage:
    """Input includes cache and tool-use prompt; output includes thoughts."""
    thoughts = as_int(raw.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=as_int(raw.get("promptTokenCount"))
        + as_int(raw.get("toolUsePromptTokenCount")),
        cached_input_tokens=as_int(raw.get("cachedContentTokenCount")),
        output_tokens=as_int(raw.get("candidatesTokenCount")) + thoughts,
        reasoning_tokens=thoughts,
        raw=raw,
    )


def model_name(version: Any) -> str | None:
    """``modelVersion`` without a ``models/`` prefix."""
    name = as_str(version)
    return name.removeprefix("models/") if name else None


def absorb_chunk(tally: Tally, chunk: Any) -> None:
    """Record one response (or streamed chunk); later chunks' usage replaces earlier."""
    if not isinstance(chunk, dict):
        return
    tally.learn_ids(model_name(chunk.get("modelVersion")), chunk.get("responseId"))
    usage = chunk.get("usageMetadata")
    if isinstance(usage, dict):
        tally.raw_usage = usage
    if chunk.get("error") is not None:
        tally.error = describe_error(chunk["error"])
    if _finished(chunk):
        tally.complete = True


def absorb_event(tally: Tally, raw: bytes) -> None:
    """Record one framed SSE block of the ``alt=sse`` form."""
    event = parse_block(raw)
    if event is not None:
        absorb_chunk(tally, exactjson.loads(event.data))


def _finished(chunk: dict[str, Any]) -> bool:
    """A candidate ended, or the prompt was blocked (a normal, empty end)."""
    candidates = as_list(chunk.get("candidates"))
    if any(as_dict(candidate).get("finishReason") for candidate in candidates):
        return True
    return bool(as_dict(chunk.get("promptFeedback")).get("blockReason"))


class _GeminiWire(DialectMeter):
    """What every Gemini form shares: the usage shape and body reading."""

    dialect = "gemini"

    @staticmethod
    def usage_from_raw(raw: dict[str, Any]) -> Usage:
        return gemini_usage(raw)

    @staticmethod
    def absorb_body(tally: Tally, body: Any) -> None:
        for chunk in body if isinstance(body, list) else [body]:
            absorb_chunk(tally, chunk)


class GeminiSSEMeter(_GeminiWire, SSEMeter):
    """The ``alt=sse`` form: parse only the last usage-bearing block, lazily."""

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        super().__init__(hide_usage_chunk=hide_usage_chunk)
        self._unparsed: bytes | None = None

    def _on_block(self, raw: bytes) -> bool:
        # Byte checks only; the remembered block is parsed when a result is asked for.
        if _USAGE_KEY in raw or self._unparsed is None:
            self._unparsed = raw
        if _ERROR_KEY in raw:
            absorb_event(self._tally, raw)
        elif _FINISHED.search(raw):
            self._tally.complete = True
        return False

    def _settle(self) -> None:
        raw, self._unparsed = self._unparsed, None
        if raw is not None:
            absorb_event(self._tally, raw)


class GeminiArrayMeter(_GeminiWire):
    """The JSON-array form: hold the undecoded tail, decode values lazily."""

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        super().__init__(hide_usage_chunk=hide_usage_chunk)
        self._scanner = JSONArrayScanner()

    def feed(self, chunk: bytes) -> bytes:
        self._scanner.feed(chunk)
        if self._scanner.undecoded_size > _ARRAY_BATCH:
            self._settle()
        return chunk

    def finish(self) -> bytes:
        self._settle()
        return b""

    def _settle(self) -> None:
        for chunk in self._scanner.take():
            absorb_chunk(self._tally, chunk)


class GeminiMeter(_GeminiWire):
    """Meters Gemini responses, choosing the SSE or JSON-array form from the first byte."""

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        super().__init__(hide_usage_chunk=hide_usage_chunk)
        self._form: DialectMeter | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._form is None:
            head = chunk.lstrip()
            if not head:
                return chunk
            self._form = GeminiArrayMeter() if head[0] in _JSON_START else GeminiSSEMeter()
        return self._form.feed(chunk)

    def finish(self) -> bytes:
        return b"" if self._form is None else self._form.finish()

    def result(self) -> Metered:
        return Metered() if self._form is None else self._form.result()
