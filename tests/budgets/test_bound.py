"""The worst-case token bound a hard budget reserves, part type by part type."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest

from tollhouse.budgets.bound import (
    IMAGE_TOKENS_ANTHROPIC,
    IMAGE_TOKENS_GEMINI_MIN,
    IMAGE_TOKENS_OPENAI,
    IMAGE_TOKENS_OPENAI_MINI_4O,
    OUTPUT_CAP,
    REQUEST_OVERHEAD,
    TOOLS_OVERHEAD,
    answers,
    bound,
    cap_output,
    image_size,
    output_tokens,
    server_tool,
)


def png(width: int, height: int) -> str:
    """A real PNG header (what image_size reads) for an image of that size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + body).decode()


def chat(*content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": list(content)}], **extra}


def test_text_counts_its_utf8_bytes_not_its_characters() -> None:
    ascii_only = bound(chat({"type": "text", "text": "a" * 300}), "openai", "gpt-4o")
    euros = chat({"type": "text", "text": "€" * 300})
    as_sent = json.dumps(euros, ensure_ascii=False).encode()  # as SDKs send it: UTF-8
    escaped = json.dumps(euros).encode()  # \u20ac: longer still
    assert ascii_only.input_tokens is not None
    for body in (as_sent, escaped):
        found = bound(euros, "openai", "gpt-4o", body).input_tokens
        assert found is not None and found - ascii_only.input_tokens >= 600  # 3 bytes, not 1
    assert ascii_only.input_tokens >= 300 + REQUEST_OVERHEAD


def test_a_utf16_body_counts_double() -> None:
    payload = chat("日本語" * 100)
    utf16 = json.dumps(payload, ensure_ascii=False).encode("utf-16")
    found = bound(payload, "openai", "gpt-4o", utf16).input_tokens
    assert found is not None and found >= 2 * len(utf16) > 900  # UTF-8: 900 bytes of text


def test_the_walk_counts_text_bytes_when_media_is_present() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9000}}
    payload = chat({"type": "text", "text": "€" * 300}, image)
    body = json.dumps(payload, ensure_ascii=False).encode()
    found = bound(payload, "openai", "gpt-4o", body).input_tokens
    assert found is not None
    assert 900 + IMAGE_TOKENS_OPENAI <= found < 900 + IMAGE_TOKENS_OPENAI + 300


def test_tool_definitions_count_with_an_overhead() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"x": "y" * 500}}}
    plain = bound(chat("hi"), "openai", "gpt-4o").input_tokens
    with_tools = bound(chat("hi", tools=[tool]), "openai", "gpt-4o").input_tokens
    assert plain is not None and with_tools is not None
    assert with_tools - plain >= 500 + TOOLS_OVERHEAD


@pytest.mark.parametrize(
    ("kind", "model", "each"),
    [
        ("openai", "gpt-4o", IMAGE_TOKENS_OPENAI),
        ("openai", "gpt-4o-mini", IMAGE_TOKENS_OPENAI_MINI_4O),
        ("anthropic", "claude-sonnet-4-5", IMAGE_TOKENS_ANTHROPIC),
    ],
)
def test_an_image_counts_its_providers_maximum_not_its_base64(
    kind: str, model: str, each: int
) -> None:
    big = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400_000}}
    two = bound(chat("x", big, big), kind, model).input_tokens
    assert two is not None
    assert 2 * each <= two < 2 * each + 300  # the 400 kB of base64 aren't text


def test_gemini_images_count_258_per_768_pixel_tile_from_their_header() -> None:
    def gemini(data: str) -> dict[str, Any]:
        part = {"inlineData": {"mimeType": "image/png", "data": data}}
        return {"contents": [{"role": "user", "parts": [part]}]}

    small = bound(gemini(png(300, 300)), "gemini", "gemini-2.5-flash").input_tokens  # 2,240
    huge = bound(gemini(png(7680, 7680)), "gemini", "gemini-2.5-flash").input_tokens
    assert small is not None and huge is not None
    assert huge - small == 100 * 258 - IMAGE_TOKENS_GEMINI_MIN
    assert image_size("data:image/png;base64," + png(1, 2)) == (1, 2)
    unreadable = bound(gemini("QUJD"), "gemini", "gemini-2.5-flash")
    assert unreadable.input_tokens is None  # no size to bound it: the context window


@pytest.mark.parametrize(
    "part",
    [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,QUJD"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "input_file", "file_url": "https://example.com/a.pdf"},
        {"type": "input_audio", "input_audio": {"data": "QUJD", "format": "wav"}},
        {"type": "document", "source": {"type": "base64", "data": "QUJD"}},
        {"fileData": {"fileUri": "gs://b/a.pdf", "mimeType": "application/pdf"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "QUJD"}},
    ],
)
def test_documents_audio_and_references_are_bounded_by_the_context_window(
    part: dict[str, Any],
) -> None:
    assert bound(chat("x", part), "openai", "gpt-4o").input_tokens is None


def test_server_side_state_is_bounded_by_the_context_window() -> None:
    follow_up = {"model": "gpt-4o", "input": "and then?", "previous_response_id": "resp_1"}
    assert bound(follow_up, "openai", "gpt-4o").input_tokens is None
    assert bound({"contents": [], "cachedContent": "c/1"}, "gemini", "g").input_tokens is None


def test_output_is_the_requests_maximum_times_its_answers() -> None:
    assert output_tokens(chat("x", max_tokens=10)) == (10, True)
    assert output_tokens(chat("x", max_completion_tokens=20, max_tokens=10)) == (20, True)
    assert output_tokens({"generationConfig": {"maxOutputTokens": 30}}) == (30, True)
    assert output_tokens(chat("x")) == (OUTPUT_CAP, False)
    assert answers(chat("x", n=8)) == 8
    assert answers({"generationConfig": {"candidateCount": 3}}) == 3
    assert answers(chat("x", n=True)) == 1
    assert bound(chat("x", max_tokens=10, n=8), "openai", "gpt-4o").output_tokens == 80


@pytest.mark.parametrize(
    ("dialect", "kind", "where"),
    [
        ("openai-chat", "openai", ("max_completion_tokens",)),
        ("openai-chat", "openai-compatible", ("max_tokens",)),
        ("anthropic", "anthropic", ("max_tokens",)),
        ("openai-responses", "openai", ("max_output_tokens",)),
        ("gemini", "gemini", ("generationConfig", "maxOutputTokens")),
    ],
)
def test_cap_output_sets_the_dialects_own_field(
    dialect: str, kind: str, where: tuple[str, ...]
) -> None:
    payload: dict[str, Any] = {"model": "m"}
    cap_output(payload, dialect, kind)
    value: Any = payload
    for key in where:
        value = value[key]
    assert value == OUTPUT_CAP
    assert output_tokens(payload) == (OUTPUT_CAP, True)


def test_server_side_tools_have_no_bound() -> None:
    assert server_tool([{"type": "function", "function": {"name": "f"}}]) is None
    assert server_tool([{"name": "f", "input_schema": {}}]) is None  # Anthropic client tool
    assert server_tool([{"type": "web_search_20250305", "name": "web_search"}]) == (
        "web_search_20250305"
    )
    assert server_tool([{"type": "web_search"}]) == "web_search"
    assert server_tool([{"googleSearch": {}}]) == "googleSearch"
