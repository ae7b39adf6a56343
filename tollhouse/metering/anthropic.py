"""Anthropic Messages usage.

Anthropic's ``input_tokens`` *excludes* the cache: total input is
``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``.
In a stream, ``message_start`` carries the input and cache counts and
``message_delta`` the output count, which is cumulative (the last one wins);
newer APIs also repeat cumulative input/cache counts there, which then win
too. The raw usage of a stream is ``message_start``'s usage object updated
with each ``message_delta``'s non-null fields, as the SDK's accumulator does.
Only ``message_start``, ``message_delta`` and ``error`` are parsed; the
content deltas in between are skipped on their event name.

>>> meter = AnthropicMeter()
>>> _ = meter.feed(b'event: message_delta\\ndata: {"usage":{"output_tokens":7}}\\n\\n')
>>> meter.result().usage.output_tokens
7
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollhouse.metering import exactjson
from tollhouse.metering.base import SSEMeter, Tally
from tollhouse.metering.fields import as_dict, as_int, describe_error, sniff_type
from tollhouse.metering.sse import SSEEvent
from tollhouse.metering.usage import Usage


def anthropic_usage(raw: dict[str, Any]) -> Usage:
    """Add the cache back into input; 1-hour writes come from ``cache_creation``.

    Without a ``cache_creation`` breakdown every write is a 5-minute write.
    ``output_tokens_details.thinking_tokens`` (newer APIs) is the reasoning part.
    """
    read = as_int(raw.get("cache_read_input_tokens"))
    written = as_int(raw.get("cache_creation_input_tokens"))
    by_ttl = as_dict(raw.get("cache_creation"))
    details = as_dict(raw.get("output_tokens_details"))
    return Usage(
        input_tokens=as_int(raw.get("input_tokens")) + read + written,
        cached_input_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=as_int(by_ttl.get("ephemeral_1h_input_tokens")),
        output_tokens=as_int(raw.get("output_tokens")),
        reasoning_tokens=as_int(details.get("thinking_tokens")),
        raw=raw,
    )


def absorb_message(tally: Tally, message: dict[str, Any]) -> None:
    """Record a Message body (or ``message_start``'s message)."""
    tally.learn_ids(message.get("model"), message.get("id"))
    usage = message.get("usage")
    if isinstance(usage, dict):
        tally.raw_usage = usage
    if message.get("error") is not None:
        tally.error = describe_error(message["error"])


def _on_start(tally: Tally, data: bytes) -> None:
    absorb_message(tally, as_dict(as_dict(exactjson.loads(data)).get("message")))


def _on_delta(tally: Tally, data: bytes) -> None:
    usage = as_dict(as_dict(exactjson.loads(data)).get("usage"))
    # Cumulative counts: overwrite, and keep message_start's where the delta is silent.
    fresh = {key: value for key, value in usage.items() if value is not None}
    if fresh:
        tally.raw_usage = {**(tally.raw_usage or {}), **fresh}


def _on_stop(tally: Tally, data: bytes) -> None:
    tally.complete = True


def _on_error(tally: Tally, data: bytes) -> None:
    parsed = exactjson.loads(data)
    error = as_dict(parsed).get("error") or parsed
    tally.error = describe_error(error or data[:200].decode(errors="replace"))


_HANDLERS: dict[bytes, Callable[[Tally, bytes], None]] = {
    b"message_start": _on_start,
    b"message_delta": _on_delta,
    b"message_stop": _on_stop,
    b"error": _on_error,
}


class AnthropicMeter(SSEMeter):
    """Meters ``/v1/messages``; complete on ``message_stop``."""

    dialect = "anthropic"
    wanted_events = tuple(_HANDLERS)

    @staticmethod
    def usage_from_raw(raw: dict[str, Any]) -> Usage:
        return anthropic_usage(raw)

    @staticmethod
    def absorb_body(tally: Tally, body: Any) -> None:
        if isinstance(body, dict):
            absorb_message(tally, body)
            tally.complete = body.get("stop_reason") is not None

    def _on_event(self, event: SSEEvent) -> bool:
        handler = _HANDLERS.get(event.event or sniff_type(event.data) or b"")
        if handler is not None:
            handler(self._tally, event.data)
        return False
