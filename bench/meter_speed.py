"""Micro-benchmark: what does each stream meter cost per SSE event?

Feeds a realistic 200-event stream of each dialect through its meter, one
event per chunk (how providers flush) and again coalesced into 4 KiB reads
(how a busy socket delivers), then prints microseconds per event, best of
several rounds. For comparison: ``passthrough`` returns the chunk and does
nothing else; ``sse-only`` is a plain ``SSEParser.feed`` that frames *and*
field-parses every event, which the meters avoid by byte-checking raw blocks.

    python bench/meter_speed.py
    python bench/meter_speed.py --rounds 9 --repeat 400
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from tollhouse.metering import SSEParser, StreamMeter, stream_meter

EVENTS = 200
WORDS = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."]


def sse(name: str | None, payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()


def chat_stream() -> list[bytes]:
    head = (
        '{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk",'
        '"created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default",'
        '"system_fingerprint":"fp_fc9f1d7035","choices":'
    )

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse(None, head + json.dumps([choice], separators=(",", ":")) + ',"usage":null}')

    usage = (
        '"usage":{"prompt_tokens":1117,"completion_tokens":196,"total_tokens":1313,'
        '"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},'
        '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}}}'
    )
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": WORDS[i % len(WORDS)]}) for i in range(EVENTS - 4)]
    events += [chunk({}, "stop"), sse(None, head + "[]," + usage), sse(None, "[DONE]")]
    return events


def responses_stream() -> list[bytes]:
    response: dict[str, Any] = {
        "id": "resp_67c9fdcecf488190bdd9a0409de3a1ec",
        "object": "response",
        "status": "in_progress",
        "model": "gpt-4.1-2025-04-14",
        "output": [],
        "usage": None,
        "tools": [],
        "temperature": 1.0,
    }
    item = "msg_67c9fdcf37fc8190ba82116e33fb28c5"

    def ev(kind: str, n: int, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, "sequence_number": n, **fields})

    events = [ev("response.created", 0, response=response)]
    events.append(ev("response.in_progress", 1, response=response))
    events.append(ev("response.output_item.added", 2, output_index=0, item={"id": item}))
    events.append(ev("response.content_part.added", 3, item_id=item, output_index=0))
    for n in range(4, EVENTS - 4):
        delta = WORDS[n % len(WORDS)]
        events.append(
            ev("response.output_text.delta", n, item_id=item, output_index=0, delta=delta)
        )
    events.append(ev("response.output_text.done", EVENTS - 4, item_id=item, text="..."))
    events.append(ev("response.content_part.done", EVENTS - 3, item_id=item))
    events.append(ev("response.output_item.done", EVENTS - 2, item={"id": item}))
    done = dict(response, status="completed", usage={"input_tokens": 37, "output_tokens": 196})
    events.append(ev("response.completed", EVENTS - 1, response=done))
    return events


def anthropic_stream() -> list[bytes]:
    usage = {
        "input_tokens": 25,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    message: dict[str, Any] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events = [sse("message_start", {"type": "message_start", "message": message})]
    events.append(
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
    )
    events.append(sse("ping", {"type": "ping"}))
    for n in range(EVENTS - 6):
        delta = {"type": "text_delta", "text": WORDS[n % len(WORDS)]}
        events.append(
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
    events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 194},
            },
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


def gemini_chunks() -> list[dict[str, Any]]:
    chunks = []
    for n in range(EVENTS):
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": WORDS[n % len(WORDS)] * 3}], "role": "model"},
            "index": 0,
        }
        if n == EVENTS - 1:
            candidate["finishReason"] = "STOP"
        usage = {
            "promptTokenCount": 9,
            "candidatesTokenCount": n + 1,
            "totalTokenCount": n + 10,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}],
        }
        chunks.append(
            {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": "gemini-2.5-flash",
                "responseId": "mGFoaJ2rMpKMz7IPmcLb0QE",
            }
        )
    return chunks


def gemini_sse_stream() -> list[bytes]:
    return [b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in gemini_chunks()]


def gemini_array_stream() -> list[bytes]:
    parts = [json.dumps(c, indent=2).encode() for c in gemini_chunks()]
    return [(b"[" if i == 0 else b"\r\n,") + p for i, p in enumerate(parts)] + [b"]"]


class Passthrough:
    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""


class SSEOnly(Passthrough):
    def __init__(self) -> None:
        self._parser = SSEParser()

    def feed(self, chunk: bytes) -> bytes:
        self._parser.feed(chunk)
        return chunk


CASES: list[tuple[str, Callable[[], Any], Callable[[], list[bytes]]]] = [
    ("passthrough", Passthrough, anthropic_stream),
    ("sse-only", SSEOnly, anthropic_stream),
    ("openai-chat", lambda: stream_meter("openai-chat"), chat_stream),
    ("openai-chat hide", lambda: stream_meter("openai-chat", hide_usage_chunk=True), chat_stream),
    ("openai-responses", lambda: stream_meter("openai-responses"), responses_stream),
    ("anthropic", lambda: stream_meter("anthropic"), anthropic_stream),
    ("gemini sse", lambda: stream_meter("gemini"), gemini_sse_stream),
    ("gemini array", lambda: stream_meter("gemini"), gemini_array_stream),
]


def coalesce(chunks: list[bytes], size: int = 4096) -> list[bytes]:
    data = b"".join(chunks)
    return [data[i : i + size] for i in range(0, len(data), size)]


def time_stream(make: Callable[[], StreamMeter], chunks: list[bytes], repeat: int) -> float:
    """Seconds for ``repeat`` full streams: feed every chunk, finish, take the result."""
    start = time.perf_counter()
    for _ in range(repeat):
        meter = make()
        for chunk in chunks:
            meter.feed(chunk)
        meter.finish()
        if hasattr(meter, "result"):
            meter.result()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    print(f"{'meter':<18} {'µs/event':>9} {'µs/event (4 KiB reads)':>23} {'stream KiB':>11}")
    for name, make, build in CASES:
        chunks = build()
        events = len(chunks) if name != "gemini array" else EVENTS
        per_event = []
        for feed in (chunks, coalesce(chunks)):
            best = min(time_stream(make, feed, args.repeat) for _ in range(args.rounds))
            per_event.append(best / args.repeat / events * 1e6)
        size = sum(map(len, chunks)) / 1024
        print(f"{name:<18} {per_event[0]:>9.2f} {per_event[1]:>23.2f} {size:>11.1f}")


if __name__ == "__main__":
    main()
