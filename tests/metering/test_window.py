"""Metering a huge non-streamed answer from a window of its two ends (issue 12)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollhouse.metering import meter_body
from tollhouse.metering.window import NO_USAGE, BodyWindow

# JSON-escaped already: a "usage" key quoted inside the content, which is not one.
FILLER = 'lorem \\"usage\\": {\\"prompt_tokens\\": 999} ' * 20

BODIES = {
    "openai-chat": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"content": "PAD"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    },
    "openai-responses": {
        "id": "resp_1",
        "status": "completed",
        "model": "gpt-4o-mini",
        "output": [{"type": "message", "status": "completed", "content": [{"text": "PAD"}]}],
        "usage": {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18},
    },
    "anthropic": {
        "id": "msg_1",
        "type": "message",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "PAD"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 11, "output_tokens": 7, "cache_read_input_tokens": 3},
    },
    "gemini": {
        "candidates": [{"content": {"parts": [{"text": "PAD"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7},
        "modelVersion": "gemini-2.0-flash",
        "responseId": "r-1",
    },
}


def _huge(dialect: str, pad: int) -> bytes:
    text = json.dumps(BODIES[dialect])
    return text.replace("PAD", FILLER + "x" * pad).encode()


@pytest.mark.parametrize("dialect", sorted(BODIES))
@given(chunk=st.integers(min_value=1, max_value=50_000))
def test_the_window_meters_as_the_whole_body_would(dialect: str, chunk: int) -> None:
    body = _huge(dialect, 300_000)
    window = BodyWindow(size=4096)
    for start in range(0, len(body), chunk):
        window.feed(body[start : start + chunk])
    assert window.metered(dialect) == meter_body(dialect, body)
    assert window.total == len(body)
    assert window.peak <= 2 * 4096 + min(chunk, 4096)  # the two ends and a small chunk


def test_usage_cut_by_the_window_or_missing_is_flagged() -> None:
    body = json.dumps({"id": "x", "choices": [{"finish_reason": "stop", "t": "y" * 10_000}]})
    window = BodyWindow(size=256)
    window.feed(body.encode())
    metered = window.metered("openai-chat")
    assert metered.usage is None and metered.error == NO_USAGE


def test_a_key_quoted_inside_the_content_is_not_the_usage() -> None:
    body = b'{"id": "x", "choices": [{"message": {"content": "' + FILLER.encode() + b'"}}]}'
    window = BodyWindow(size=64)
    window.feed(body)
    assert window.metered("openai-chat").usage is None
