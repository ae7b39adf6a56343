"""Answer text in every dialect, bodies and streams."""

from __future__ import annotations

import json

import pytest

from tollhouse.trust.text import answer_text


def sse(*events: dict[str, object]) -> bytes:
    return (
        b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    )


@pytest.mark.parametrize(
    ("dialect", "body"),
    [
        ("openai-chat", {"choices": [{"message": {"content": "hello there"}}]}),
        ("anthropic", {"content": [{"type": "text", "text": "hello there"}]}),
        (
            "openai-responses",
            {
                "output": [
                    {"type": "message", "content": [{"type": "output_text", "text": "hello there"}]}
                ]
            },
        ),
        ("gemini", {"candidates": [{"content": {"parts": [{"text": "hello there"}]}}]}),
    ],
)
def test_bodies(dialect: str, body: dict[str, object]) -> None:
    assert answer_text(dialect, json.dumps(body).encode()) == "hello there"


def test_streams() -> None:
    chat = sse(
        {"choices": [{"delta": {"content": "hel"}}]}, {"choices": [{"delta": {"content": "lo"}}]}
    )
    assert answer_text("openai-chat", chat) == "hello"
    anthropic = b"event: content_block_delta\n" + sse(
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hello"}}
    )
    assert answer_text("anthropic", anthropic) == "hello"
    responses = sse({"type": "response.output_text.delta", "delta": "hello"})
    assert answer_text("openai-responses", responses) == "hello"


def test_tool_calls_compare_by_their_arguments() -> None:
    body = {"choices": [{"message": {"tool_calls": [{"function": {"arguments": '{"a":1}'}}]}}]}
    assert answer_text("openai-chat", json.dumps(body).encode()) == '{"a":1}'


def test_garbage_is_empty_text() -> None:
    assert answer_text("openai-chat", b"{not json") == ""
