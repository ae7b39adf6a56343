"""Metering one intercepted response while its bytes pass through, never held back.

A stream (``text/event-stream``) goes chunk by chunk through the dialect's
own stream meter from :mod:`tollhouse.metering.registry`; any other body is
forwarded chunk by chunk too, with a copy kept (up to a cap) for the
dialect's body meter at the end. Sans-io: bytes in, bytes out.

>>> tap = ResponseTap("anthropic", streaming=True)
>>> forwarded = tap.feed(b"event: message_start\\n")  # the same bytes, at once
>>> tap.finish(), tap.result().complete
(b'', False)
"""

from __future__ import annotations

from tollhouse.intercept.envelope import UnwrappingMeter, unwrap_body
from tollhouse.metering.base import StreamMeter
from tollhouse.metering.registry import meter_body, stream_meter
from tollhouse.metering.usage import Metered

#: A non-streamed body larger than this is forwarded but not metered.
MAX_BODY_COPY = 32 * 1024 * 1024


class ResponseTap:
    """The meter on one response; :meth:`feed` returns what to forward now."""

    def __init__(
        self,
        dialect: str,
        *,
        streaming: bool,
        hide_usage_chunk: bool = False,
        envelope: str | None = None,
    ) -> None:
        self.dialect = dialect
        self.streaming = streaming
        self.envelope = envelope
        self._meter: StreamMeter | None = None
        if streaming:
            self._meter = stream_meter(dialect, hide_usage_chunk=hide_usage_chunk)
            if envelope is not None:
                self._meter = UnwrappingMeter(self._meter, envelope)
        self._copy: bytearray | None = None if streaming else bytearray()

    def feed(self, chunk: bytes) -> bytes:
        if self._meter is not None:
            return self._meter.feed(chunk)
        if self._copy is not None:
            if len(self._copy) + len(chunk) > MAX_BODY_COPY:
                self._copy = None  # too big to be an LLM answer: stop copying, keep forwarding
            else:
                self._copy += chunk
        return chunk

    def finish(self) -> bytes:
        return self._meter.finish() if self._meter is not None else b""

    def result(self) -> Metered:
        if self._meter is not None:
            return self._meter.result()
        if self._copy is None:
            return Metered(error="body too large to meter")
        body = bytes(self._copy)
        if self.envelope is not None:
            body = unwrap_body(body, self.envelope)
        return meter_body(self.dialect, body)
