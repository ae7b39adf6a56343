"""Incremental Server-Sent Events framing: bytes in, complete events out, no I/O.

Chunk boundaries are arbitrary: an event may be split across chunks, one chunk
may hold several events, and lines may end in ``\\r\\n``, ``\\n`` or ``\\r``
(all three are legal SSE). The parser keeps only the unfinished tail.

>>> parser = SSEParser()
>>> parser.feed(b"event: ping\\ndata: {}\\n\\nda")
[SSEEvent(event=b'ping', data=b'{}', raw=b'event: ping\\ndata: {}\\n\\n')]
>>> parser.feed(b"ta: [DONE]")
[]
>>> parser.flush()
[SSEEvent(event=None, data=b'[DONE]', raw=b'data: [DONE]')]
"""

from __future__ import annotations

from dataclasses import dataclass

# The byte pairs that betray a blank line, whatever mix of CR, LF and CRLF.
_PAIRS = (b"\n\n", b"\n\r", b"\r\r")
_CR, _LF = 13, 10
_BOM = b"\xef\xbb\xbf"
# A terminator pair is at most 4 bytes; an unfinished one starts this far back.
_LOOKBACK = 3


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event: its ``event:`` name, its data lines joined by ``\\n``,
    and the exact bytes it was framed from (blank-line terminator included)."""

    event: bytes | None
    data: bytes
    raw: bytes = b""


def parse_block(raw: bytes) -> SSEEvent | None:
    """Read the fields of one framed block; None when it has no data line.

    Per the SSE spec a block without ``data:`` (comments such as OpenRouter's
    ``: OPENROUTER PROCESSING``, a lone ``event:``) dispatches nothing; ``id``
    and ``retry`` are not needed for metering and are skipped.
    """
    event: bytes | None = None
    data: list[bytes] = []
    for line in (raw[3:] if raw[:3] == _BOM else raw).splitlines():
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            event = line[7:] if line[6:7] == b" " else line[6:]
        elif line == b"data":
            data.append(b"")
        elif line == b"event":
            event = b""
    if not data:
        return None
    return SSEEvent(event, data[0] if len(data) == 1 else b"\n".join(data), raw)


def split_blocks(
    buf: bytes | bytearray, scan: int = 0, final: bool = False
) -> tuple[list[bytes], int]:
    """Cut ``buf`` into complete blocks; return them and how many bytes they used.

    ``scan`` is where to resume looking for a blank line inside the first
    block (bytes before it were already searched). Without ``final``, a CR at
    the very end waits for the next chunk: it may be half of a CRLF.
    """
    if buf.find(b"\r", scan) < 0:
        return _split_uniform(buf, scan, b"\n")
    crlf = buf.count(b"\r\n", scan)
    if buf.count(b"\r", scan) == crlf == buf.count(b"\n", scan):
        return _split_uniform(buf, scan, b"\r\n")
    return _split_any(buf, scan, final)


def _split_uniform(buf: bytes | bytearray, scan: int, newline: bytes) -> tuple[list[bytes], int]:
    """The common case, one kind of line ending in sight: one ``find`` per event."""
    blocks: list[bytes] = []
    start, size, blank = 0, len(buf), newline + newline
    while start < size:
        if buf.startswith(newline, start):  # a stray blank line between events
            end = start + len(newline)
        else:
            found = buf.find(blank, scan if scan > start else start)
            if found < 0:
                break
            end = found + len(blank)
        blocks.append(bytes(buf[start:end]))
        start = end
    return blocks, start


def _split_any(buf: bytes | bytearray, scan: int, final: bool) -> tuple[list[bytes], int]:
    """Any mix of CR, LF and CRLF line endings."""
    blocks: list[bytes] = []
    start, size = 0, len(buf)
    ahead = [-2] * len(_PAIRS)  # next hit of each pair; -2 not looked yet, -1 none
    while start < size:
        end = _blank_line_at(buf, start, size)
        if end < 0:
            end = _next_blank_line(buf, scan if scan > start else start, ahead)
            if end < 0:
                break
        if end == size and buf[end - 1] == _CR and not final:
            break
        blocks.append(bytes(buf[start:end]))
        start = end
    return blocks, start


def _next_blank_line(buf: bytes | bytearray, pos: int, ahead: list[int]) -> int:
    """End of the first blank line at or after ``pos``, else -1.

    Every blank line (a terminator right after a terminator) contains one of
    ``_PAIRS`` and each pair marks one. ``ahead`` remembers where each pair
    occurs next, so a buffer of many events is not rescanned per event.
    """
    for index, hit in enumerate(ahead):
        if hit == -2 or 0 <= hit < pos:
            ahead[index] = buf.find(_PAIRS[index], pos)
    hits = [hit for hit in ahead if hit >= 0]
    if not hits:
        return -1
    end = min(hits) + 2
    if buf[end - 1] == _CR and end < len(buf) and buf[end] == _LF:
        end += 1  # the blank line's own terminator was a CRLF
    return end


def _blank_line_at(buf: bytes | bytearray, start: int, size: int) -> int:
    """End of a blank line sitting right at ``start`` (a block start), else -1."""
    first = buf[start]
    if first == _LF:
        return start + 1
    if first != _CR:
        return -1
    if start + 1 < size and buf[start + 1] == _LF:
        return start + 2
    return start + 1


class SSEParser:
    """Frame a byte stream into :class:`SSEEvent` objects, keeping the remainder.

    ``feed_blocks`` exposes the raw framing (every byte lands in exactly one
    block, comment-only blocks included) for callers that filter the stream.
    """

    __slots__ = ("_pending", "_scan")

    def __init__(self) -> None:
        self._pending = bytearray()
        self._scan = 0

    @property
    def pending(self) -> bytes:
        """The bytes of the unfinished event held back so far."""
        return bytes(self._pending)

    @property
    def pending_size(self) -> int:
        """How many bytes are held back."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Add ``data``; return the events it completed."""
        return _events(self.feed_blocks(data))

    def flush(self) -> list[SSEEvent]:
        """End of stream: the final event, even without its trailing blank line."""
        return _events(self.flush_blocks())

    def feed_blocks(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the raw blocks it completed."""
        pending = self._pending
        if not pending:
            blocks, used = split_blocks(data)
            if used < len(data):
                pending += memoryview(data)[used:]
                self._scan = max(0, len(pending) - _LOOKBACK)
            return blocks
        pending += data
        return self._cut(final=False)

    def flush_blocks(self) -> list[bytes]:
        """End of stream: the remaining bytes as blocks, the last one unterminated."""
        blocks = self._cut(final=True)
        if self._pending:
            blocks.append(bytes(self._pending))
            self._pending.clear()
        return blocks

    def _cut(self, final: bool) -> list[bytes]:
        blocks, used = split_blocks(self._pending, self._scan, final)
        del self._pending[:used]
        self._scan = max(0, len(self._pending) - _LOOKBACK)
        return blocks


def _events(blocks: list[bytes]) -> list[SSEEvent]:
    return [event for block in blocks if (event := parse_block(block)) is not None]
