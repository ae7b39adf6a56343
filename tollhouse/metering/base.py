"""The meter interface every wire dialect implements, and the shared SSE plumbing.

A dialect is one :class:`DialectMeter` subclass: constructed, it meters one
stream (:class:`StreamMeter`); its ``meter_body`` classmethod meters a whole
non-streaming response. Meters never raise on what upstream sends: they
forward the bytes and record what they could read.

Example::

    meter = AnthropicMeter()
    for chunk in upstream:
        client.write(meter.feed(chunk))
    client.write(meter.finish())
    ledger.record(meter.result())
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from tollhouse.metering import exactjson
from tollhouse.metering.sse import SSEEvent, SSEParser, parse_block
from tollhouse.metering.usage import Metered, Usage

logger = logging.getLogger(__name__)


class StreamMeter(Protocol):
    """Meters one streamed response while its bytes pass through."""

    def feed(self, chunk: bytes) -> bytes:
        """Take an upstream chunk; return the bytes to forward (usually ``chunk``)."""
        ...

    def finish(self) -> bytes:
        """End of upstream stream: return any held-back bytes to forward."""
        ...

    def result(self) -> Metered:
        """What is known so far; callable at any time, also after a cut."""
        ...

    @property
    def ended(self) -> bool:
        """The terminal event has been seen."""
        ...


@dataclass(slots=True)
class Tally:
    """What a meter has learned so far; ``raw_usage`` is the provider's usage object."""

    raw_usage: dict[str, Any] | None = None
    model: str | None = None
    upstream_id: str | None = None
    complete: bool = False
    error: str | None = None

    def learn_ids(self, model: Any, upstream_id: Any) -> None:
        """Keep the first non-empty model name and response id seen."""
        if self.model is None and isinstance(model, str) and model:
            self.model = model
        if self.upstream_id is None and isinstance(upstream_id, str) and upstream_id:
            self.upstream_id = upstream_id


class DialectMeter(ABC):
    """One wire dialect: an instance meters a stream, the class meters bodies."""

    dialect: str = ""

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        # hide_usage_chunk only means something to openai-chat; all accept it alike.
        self._tally = Tally()

    @staticmethod
    @abstractmethod
    def usage_from_raw(raw: dict[str, Any]) -> Usage:
        """Normalise the provider's usage object (genai-prices conventions)."""

    @staticmethod
    @abstractmethod
    def absorb_body(tally: Tally, body: Any) -> None:
        """Record what a parsed non-streaming response body says."""

    @classmethod
    def meter_body(cls, body: bytes) -> Metered:
        """Meter a whole non-streaming JSON response body."""
        tally = Tally()
        parsed = exactjson.loads(body)
        with shielded(cls.dialect):
            if parsed is not None:
                cls.absorb_body(tally, parsed)
        return snapshot(tally, cls.usage_from_raw)

    @abstractmethod
    def feed(self, chunk: bytes) -> bytes: ...

    @abstractmethod
    def finish(self) -> bytes: ...

    @property
    def ended(self) -> bool:
        """The stream's terminal event has been seen (cheap: no snapshot)."""
        return self._tally.complete

    def result(self) -> Metered:
        with shielded(self.dialect):
            self._settle()
        return snapshot(self._tally, self.usage_from_raw)

    def _settle(self) -> None:  # noqa: B027 -- a no-op hook, not abstract
        """Hook: parse whatever was deferred, before a result is taken."""


class SSEMeter(DialectMeter):
    """A meter for an SSE dialect that forwards bytes unchanged.

    Every framed block goes to :meth:`_on_block`, which should look at the raw
    bytes first and parse only what matters. The default skips blocks whose
    first line names an event outside ``wanted_events`` (without parsing
    them), and hands the rest to :meth:`_on_event`.
    """

    #: Event names worth parsing; None parses every block.
    wanted_events: ClassVar[tuple[bytes, ...] | None] = None

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        super().__init__(hide_usage_chunk=hide_usage_chunk)
        self._sse = SSEParser()
        self._warned = False
        wanted = self.wanted_events
        self._wanted = None if wanted is None else tuple(b"event: " + name for name in wanted)

    def feed(self, chunk: bytes) -> bytes:
        for block in self._sse.feed_blocks(chunk):
            self._on_block_safely(block)
        return chunk

    def finish(self) -> bytes:
        for block in self._sse.flush_blocks():
            self._on_block_safely(block)
        return b""

    def _on_block(self, raw: bytes) -> bool:
        """Record one framed block; True asks to drop it from the forwarded bytes."""
        wanted = self._wanted
        if wanted is not None and raw.startswith(b"event: ") and not raw.startswith(wanted):
            return False
        event = parse_block(raw)
        return event is not None and self._on_event(event)

    def _on_event(self, event: SSEEvent) -> bool:
        """Record one parsed event; True asks to drop it from the forwarded bytes."""
        return False

    def _on_block_safely(self, raw: bytes) -> bool:
        # A parser bug must cost the ledger one event, never the client its stream.
        try:
            return self._on_block(raw)
        except Exception:
            if not self._warned:
                self._warned = True
                logger.warning("%s meter skipped an unreadable event", self.dialect, exc_info=True)
            return False


@contextmanager
def shielded(dialect: str) -> Iterator[None]:
    """Log and swallow a parser bug: it may cost the ledger detail, never the client."""
    try:
        yield
    except Exception:
        logger.warning("%s meter skipped input it could not read", dialect, exc_info=True)


def snapshot(tally: Tally, usage_from_raw: Callable[[dict[str, Any]], Usage]) -> Metered:
    """Freeze a tally into a :class:`Metered` (copying the raw usage)."""
    raw = tally.raw_usage
    usage = None if raw is None else usage_from_raw(dict(raw))
    return Metered(usage, tally.model, tally.upstream_id, tally.complete, tally.error)
