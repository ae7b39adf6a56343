"""estimate_tokens(): chars/4 of the texts in every dialect, plus the max output."""

from __future__ import annotations

from tollhouse.capacity import estimate_tokens
from tollhouse.capacity.estimate import DEFAULT_MAX_OUTPUT, MEDIA_TOKENS, input_tokens


def test_openai_chat() -> None:
    payload = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "s" * 40},
            {"role": "user", "content": [{"type": "text", "text": "u" * 400}]},
        ],
        "max_completion_tokens": 300,
    }
    assert estimate_tokens(payload) == 110 + 300


def test_anthropic_messages() -> None:
    payload = {
        "model": "claude-x",
        "system": [{"type": "text", "text": "s" * 80}],
        "messages": [{"role": "user", "content": "u" * 81}],
        "max_tokens": 64,
    }
    assert estimate_tokens(payload) == 20 + 21 + 64  # each rounded up once, overall


def test_openai_responses() -> None:
    payload = {"model": "m", "instructions": "i" * 40, "input": "x" * 40, "max_output_tokens": 10}
    assert estimate_tokens(payload) == 20 + 10


def test_gemini() -> None:
    payload = {
        "systemInstruction": {"parts": [{"text": "s" * 40}]},
        "contents": [{"role": "user", "parts": [{"text": "u" * 40}]}],
        "generationConfig": {"maxOutputTokens": 77, "temperature": 0.2},
    }
    assert estimate_tokens(payload) == 20 + 77


def test_default_max_output() -> None:
    assert estimate_tokens({"messages": []}) == DEFAULT_MAX_OUTPUT
    assert estimate_tokens({"messages": [], "max_tokens": "lots"}) == DEFAULT_MAX_OUTPUT
    assert estimate_tokens({"messages": [], "max_tokens": True}) == DEFAULT_MAX_OUTPUT


def test_tools_count_and_media_is_flat() -> None:
    image = "iVBORw0KGgo" * 100_000  # a megabyte of base64 is not a million tokens
    payload = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}},
                    {"type": "text", "text": "what is this?"},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "data": image}},
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"description": "d" * 400}}],
    }
    assert input_tokens(payload) == 2 * MEDIA_TOKENS + 104  # 13 + 400 chars -> 104


def test_deep_nesting_does_not_recurse() -> None:
    node: dict[str, object] = {"text": "x" * 4}
    for _ in range(5000):
        node = {"content": [node]}
    assert input_tokens(node) == 1
