"""OpenAI Chat Completions usage (also xAI, OpenRouter and other look-alikes).

Streaming usage comes in one chunk with ``choices: []`` after the
``finish_reason`` chunk and before ``data: [DONE]``, and only when the request
set ``stream_options.include_usage``. When the gateway set that option itself
(``hide_usage_chunk=True``), the usage-only event is cut from the forwarded
bytes so the client sees exactly the stream it asked for.

>>> meter = OpenAIChatMeter(hide_usage_chunk=True)
>>> meter.feed(b'data: {"choices":[],"usage":{"prompt_tokens":3}}\\n\\ndata: [DONE]\\n\\n')
b'data: [DONE]\\n\\n'
>>> meter.result().usage.input_tokens
3
"""

from __future__ import annotations

import re
from typing import Any

from tollhouse.metering import exactjson
from tollhouse.metering.base import SSEMeter, Tally
from tollhouse.metering.fields import as_dict, as_int, as_list, describe_error
from tollhouse.metering.sse import SSEEvent, parse_block
from tollhouse.metering.usage import Usage

# A non-null usage object; every chunk carries "usage":null once include_usage
# is on. Quotes inside JSON strings are escaped, so this only matches a key.
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_ERROR_KEY = b'"error"'
_DONE = b"[DONE]"
# "data: [DONE]" frames small; looking for it only in small blocks spares a scan per chunk.
_DONE_BLOCK_MAX = 64
_ERROR_KINDS = ("type", "code")


def chat_usage(raw: dict[str, Any]) -> Usage:
    """``prompt_tokens`` includes cached tokens; ``completion_tokens`` includes reasoning.

    Except on xAI, whose ``completion_tokens`` leaves reasoning out (its
    ``total_tokens`` adds all three; genai-prices' xAI extractor adds it back).
    The totals tell the two apart, so no provider name is needed.
    """
    prompt = as_dict(raw.get("prompt_tokens_details"))
    reasoning = as_int(as_dict(raw.get("completion_tokens_details")).get("reasoning_tokens"))
    return Usage(
        input_tokens=as_int(raw.get("prompt_tokens")),
        cached_input_tokens=as_int(prompt.get("cached_tokens")),
        cache_write_tokens=as_int(prompt.get("cache_write_tokens")),
        output_tokens=_output_tokens(raw, reasoning),
        reasoning_tokens=reasoning,
        raw=raw,
    )


def _output_tokens(raw: dict[str, Any], reasoning: int) -> int:
    completion = as_int(raw.get("completion_tokens"))
    total, prompt = as_int(raw.get("total_tokens")), as_int(raw.get("prompt_tokens"))
    if reasoning and total == prompt + completion + reasoning:
        return completion + reasoning
    return completion


def absorb_chunk(tally: Tally, chunk: dict[str, Any]) -> None:
    """Record ids, usage and an in-band error from a completion or a chunk."""
    tally.learn_ids(chunk.get("model"), chunk.get("id"))
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        tally.raw_usage = usage
    if chunk.get("error") is not None:
        tally.error = describe_error(chunk["error"], _ERROR_KINDS)


def is_usage_only(chunk: dict[str, Any]) -> bool:
    """The extra chunk ``include_usage`` adds: usage, no choices, no error."""
    return (
        isinstance(chunk.get("usage"), dict) and not chunk.get("choices") and not chunk.get("error")
    )


class OpenAIChatMeter(SSEMeter):
    """Meters ``/v1/chat/completions``; complete once ``data: [DONE]`` arrives."""

    dialect = "openai-chat"

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        super().__init__(hide_usage_chunk=hide_usage_chunk)
        self._hiding = hide_usage_chunk
        self._first_block: bytes | None = None

    @staticmethod
    def usage_from_raw(raw: dict[str, Any]) -> Usage:
        return chat_usage(raw)

    @staticmethod
    def absorb_body(tally: Tally, body: Any) -> None:
        if not isinstance(body, dict):
            return
        absorb_chunk(tally, body)
        choices = as_list(body.get("choices"))
        tally.complete = any(as_dict(choice).get("finish_reason") for choice in choices)

    def feed(self, chunk: bytes) -> bytes:
        if not self._hiding:
            return super().feed(chunk)
        held_before = self._sse.pending_size
        blocks = self._sse.feed_blocks(chunk)
        kept = self._drop_usage_chunk(blocks)
        if len(kept) == len(blocks) and not held_before and not self._sse.pending_size:
            return chunk
        forwarded = b"".join(kept)
        if not self._hiding:  # the usage chunk is gone: release the held tail, pass through
            forwarded += self._sse.pending
        return forwarded

    def finish(self) -> bytes:
        if not self._hiding:
            return super().finish()
        return b"".join(self._drop_usage_chunk(self._sse.flush_blocks()))

    def _drop_usage_chunk(self, blocks: list[bytes]) -> list[bytes]:
        return [block for block in blocks if not self._on_block_safely(block)]

    def _on_block(self, raw: bytes) -> bool:
        # Plain content chunks are only byte-checked; the first is kept for its ids.
        done = len(raw) < _DONE_BLOCK_MAX and _DONE in raw
        if done or _ERROR_KEY in raw or _USAGE_OBJECT.search(raw) is not None:
            return super()._on_block(raw)
        if self._first_block is None and raw.startswith(b"data"):
            self._first_block = raw
        return False

    def _on_event(self, event: SSEEvent) -> bool:
        data = event.data
        if data.startswith(_DONE):
            self._tally.complete = True
            return False
        chunk = exactjson.loads(data)
        if not isinstance(chunk, dict):
            return False
        absorb_chunk(self._tally, chunk)
        hide = self._hiding and is_usage_only(chunk)
        self._hiding = self._hiding and not hide
        return hide

    def _settle(self) -> None:
        # Ids come free with the usage chunk; parse the first chunk only if it never came.
        first, tally = self._first_block, self._tally
        if not first or (tally.model is not None and tally.upstream_id is not None):
            return
        self._first_block = b""  # parsed once; later chunks need not be remembered
        event = parse_block(first)
        chunk = exactjson.loads(event.data) if event is not None else None
        if isinstance(chunk, dict):
            tally.learn_ids(chunk.get("model"), chunk.get("id"))
