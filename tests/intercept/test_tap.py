"""The response tap forwards every byte at once and meters with the core's parsers."""

from __future__ import annotations

import json

from tollhouse.intercept.tap import ResponseTap
from tollhouse.metering.registry import meter_body

ANTHROPIC_STREAM = [
    b'event: message_start\ndata: {"type":"message_start",'
    b'"message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":10,"cache_read_input_tokens":4,"output_tokens":1}}}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"hi"}}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":7}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]


def test_stream_bytes_pass_unchanged_chunk_by_chunk() -> None:
    tap = ResponseTap("anthropic", streaming=True)
    wire = b"".join(ANTHROPIC_STREAM)
    pieces = [wire[i : i + 7] for i in range(0, len(wire), 7)]  # split anywhere
    assert [tap.feed(p) for p in pieces] == pieces
    assert tap.finish() == b""
    result = tap.result()
    assert result.complete and result.upstream_id == "msg_1"
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.cached_input_tokens) == (14, 4)
    assert result.usage.output_tokens == 7  # cumulative, not summed


def test_cut_stream_keeps_what_it_knew() -> None:
    tap = ResponseTap("anthropic", streaming=True)
    tap.feed(ANTHROPIC_STREAM[0])
    result = tap.result()
    assert not result.complete and result.usage is not None and result.usage.input_tokens == 14


def test_a_body_is_forwarded_as_it_comes_and_metered_whole() -> None:
    body = json.dumps(
        {
            "id": "chatcmpl-1",
            "model": "gpt-4o",
            "usage": {"prompt_tokens": 5, "completion_tokens": 3},
        }
    ).encode()
    tap = ResponseTap("openai-chat", streaming=False)
    assert tap.feed(body[:10]) == body[:10] and tap.feed(body[10:]) == body[10:]
    assert tap.result() == meter_body("openai-chat", body)


def test_hidden_usage_chunk_is_cut_from_the_forwarded_bytes() -> None:
    usage = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1}}\n\n'
    first = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    tap = ResponseTap("openai-chat", streaming=True, hide_usage_chunk=True)
    out = tap.feed(first) + tap.feed(usage) + tap.feed(b"data: [DONE]\n\n") + tap.finish()
    assert b"usage" not in out and b"[DONE]" in out
    assert tap.result().usage is not None
