"""Metering a non-streamed answer too large to hold: from its first and last bytes.

A 200 MB JSON answer is relayed as it arrives; only a window of its head and
its tail is kept. Every dialect puts what the ledger needs at one end: ids,
model and the Responses ``status`` near the start; ``usage`` (OpenAI,
Anthropic), ``usageMetadata`` (Gemini) and the finish reasons near the end.
:meth:`BodyWindow.metered` finds those keys with a tolerant scan, builds a
small stand-in body from them, and meters that with the dialect's own meter.

>>> window = BodyWindow(size=64)
>>> window.feed(b'{"id": "x", "choices": [' + b" " * 1000)
>>> window.feed(b'{"finish_reason": "stop"}], "usage": {"prompt_tokens": 1, '
...             b'"completion_tokens": 2}}')
>>> window.metered("openai-chat").usage.output_tokens
2
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from tollhouse.metering import exactjson
from tollhouse.metering.registry import meter_body
from tollhouse.metering.usage import Metered

WINDOW = 256 * 1024  # per end; usage objects are well under 1 KiB
# Keys looked for first in the head (their first occurrence), then in the tail (their last)...
HEAD_KEYS = ("id", "model", "status", "responseId", "modelVersion")
# ... and these the other way round.
TAIL_KEYS = ("usage", "usageMetadata", "stop_reason", "finish_reason", "finishReason")
NO_USAGE = "usage_not_found_in_large_answer"


class BodyWindow:
    """The first and last ``size`` bytes of a body, and how many bytes went by."""

    __slots__ = ("_head", "_size", "_tail", "peak", "total")

    def __init__(self, size: int = WINDOW) -> None:
        self._size = size
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self.peak = 0  # most bytes ever held: the memory bound, for tests

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._size - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if len(chunk) >= self._size:  # a big chunk: only its end matters
            self._tail = bytearray(chunk[-self._size :])
        else:
            self._tail += chunk
        self.peak = max(self.peak, len(self._head) + len(self._tail))
        if len(self._tail) > self._size:
            del self._tail[: len(self._tail) - self._size]

    def metered(self, dialect: str) -> Metered:
        """What the dialect's meter makes of the stand-in body; flagged when usage is missing."""
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        found = {}
        for key in (*HEAD_KEYS, *TAIL_KEYS):
            ends = [(head, True), (tail, False)]
            for text, first in ends if key in HEAD_KEYS else reversed(ends):
                value = _value(text, key, first=first)
                if value is not None:
                    found[key] = value
                    break
        result = meter_body(dialect, exactjson.dumps(_stand_in(found)).encode())
        if result.usage is None:
            return replace(result, error=result.error or NO_USAGE)
        return result


def _stand_in(found: dict[str, Any]) -> dict[str, Any]:
    """One small body every dialect's meter reads the same way as the real one."""
    body = dict(found)
    if "finish_reason" in found:
        body["choices"] = [{"finish_reason": found["finish_reason"]}]
    if "finishReason" in found:
        body["candidates"] = [{"finishReason": found["finishReason"]}]
    return body


def _value(text: str, key: str, *, first: bool) -> Any:
    """The JSON value after ``"key":`` in ``text``; None when absent or cut by the window.

    A key inside a JSON string is escaped (``\\"usage\\"``), so a quote with a
    backslash before it is content, not a key.
    """
    matches = list(re.finditer(rf'(?<!\\)"{re.escape(key)}"\s*:\s*', text))
    for match in matches if first else reversed(matches):
        try:
            value, _ = exactjson.decoder().raw_decode(text, match.end())
        except (ValueError, RecursionError):
            continue  # cut off by the window's edge: try another occurrence
        return value
    return None
