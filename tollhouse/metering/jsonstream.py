"""Top-level values of a streamed JSON array, decoded as they complete.

Gemini's ``streamGenerateContent`` without ``alt=sse`` sends one JSON array,
``[{...}\\r\\n,{...}]``, over many chunks. The scanner keeps the undecoded tail
only; values come out once their closing brace has arrived.

>>> scanner = JSONArrayScanner()
>>> scanner.feed(b'[{"a": 1}\\r\\n,{"b"')
>>> scanner.take()
[{'a': 1}]
>>> scanner.feed(b': 2}]')
>>> scanner.take()
[{'b': 2}]
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from tollhouse.metering import exactjson

_BETWEEN_VALUES = re.compile(r"[\s,\[\]]*")
# Past this much undecodable text the stream is garbage, not a slow value.
_GIVE_UP = 64 * 1024 * 1024


class JSONArrayScanner:
    """Decode the elements of a JSON array (or a lone object) arriving in chunks."""

    __slots__ = ("_decoder", "_pending", "_text")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = bytearray()
        self._text = ""

    @property
    def undecoded_size(self) -> int:
        """Bytes fed since the last :meth:`take`."""
        return len(self._pending)

    def feed(self, data: bytes) -> None:
        """Hold ``data``; nothing is decoded until :meth:`take`."""
        self._pending += data

    def take(self) -> list[Any]:
        """Every value completed so far, in order; the partial tail stays held."""
        text = self._text + self._decoder.decode(bytes(self._pending))
        self._pending.clear()
        values, used = _decode_values(text)
        self._text = text[used:]
        if len(self._text) > _GIVE_UP:
            self._text = ""
        return values


def _decode_values(text: str) -> tuple[list[Any], int]:
    """Decode values from ``text`` until one is incomplete or malformed."""
    values: list[Any] = []
    decoder = exactjson.decoder()
    used = 0
    while True:
        start = _BETWEEN_VALUES.match(text, used).end()  # type: ignore[union-attr]
        if start == len(text):
            return values, start
        try:
            value, used = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            return values, start
        values.append(value)
