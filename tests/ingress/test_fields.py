"""The typed check layer, sans-io: each dialect's fields, wrong types named with a fix.

Through the gateway (the client's own error format, a ledger row) in test_fuzz_ingress.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.errors import BadRequest
from tollhouse.ingress import DIALECTS, parse_json_body
from tollhouse.ingress.base import MAX_DEPTH
from tollhouse.ingress.fields import FieldError

HI = [{"role": "user", "content": "hi"}]
CHAT = {"model": "gpt-4o-mini", "messages": HI}
ANTHROPIC = {"model": "claude-sonnet-4-5", "messages": HI, "max_tokens": 10}
RESPONSES = {"model": "gpt-4o-mini", "input": "hi"}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
GEMINI_MATCH = {"target": "gemini-2.5-flash:generateContent", "version": "v1beta"}


def call(dialect: str, payload: dict[str, Any]) -> Any:
    if dialect == "gemini":
        path = "/v1beta/models/gemini-2.5-flash:generateContent"
        return DIALECTS[dialect].call(path, GEMINI_MATCH, payload)
    return DIALECTS[dialect].call("/v1/x", {}, payload)


WRONG: list[tuple[str, dict[str, Any], str, str]] = [
    # dialect, body, the field named, words of the fix
    ("openai-chat", {**CHAT, "stream": True, "stream_options": "x"}, "stream_options", "object"),
    ("openai-chat", {**CHAT, "stream": "yes"}, "stream", "true or false"),
    ("openai-chat", {**CHAT, "messages": 5}, "messages", "list of message objects"),
    ("openai-chat", {**CHAT, "max_tokens": "10"}, "max_tokens", "whole number of tokens"),
    ("openai-chat", {**CHAT, "max_tokens": -1}, "max_tokens", "whole number of tokens"),
    ("openai-chat", {**CHAT, "max_tokens": 1e300}, "max_tokens", "whole number of tokens"),
    ("openai-chat", {**CHAT, "max_tokens": 10**400}, "max_tokens", "401-digit"),
    ("openai-chat", {**CHAT, "max_tokens": True}, "max_tokens", "whole number of tokens"),
    ("openai-chat", {**CHAT, "max_completion_tokens": 2.5}, "max_completion_tokens", "whole"),
    ("openai-chat", {**CHAT, "n": "2"}, "n", "whole number from 1"),
    ("openai-chat", {**CHAT, "tools": {}}, "tools", "list of tool objects"),
    ("openai-chat", {**CHAT, "temperature": float("nan")}, "temperature", "finite"),
    ("openai-chat", {**CHAT, "stop": [1]}, "stop[0]", "string"),
    (
        "openai-chat",
        {**CHAT, "messages": [{"role": "user", "content": [5]}]},
        "messages[0].content[0]",
        "object",
    ),
    (
        "openai-chat",
        {**CHAT, "messages": [{"role": 1, "content": "x"}]},
        "messages[0].role",
        "string",
    ),
    ("openai-chat", {**CHAT, "messages": [None]}, "messages[0]", "object"),
    ("openai-responses", {**RESPONSES, "input": 5}, "input", "string or a list"),
    (
        "openai-responses",
        {**RESPONSES, "input": [{"role": "user", "content": 7}]},
        "input[0].content",
        "string",
    ),
    ("openai-responses", {**RESPONSES, "max_output_tokens": "5"}, "max_output_tokens", "tokens"),
    ("anthropic", {**ANTHROPIC, "max_tokens": "10"}, "max_tokens", "whole number of tokens"),
    ("anthropic", {**ANTHROPIC, "system": 5}, "system", "string or a list of text blocks"),
    (
        "anthropic",
        {**ANTHROPIC, "messages": [{"role": "user", "content": [{"type": 3}]}]},
        "messages[0].content[0].type",
        "string",
    ),
    (
        "anthropic",
        {**ANTHROPIC, "thinking": {"type": "enabled", "budget_tokens": -5}},
        "thinking.budget_tokens",
        "tokens",
    ),
    ("gemini", {"contents": 5}, "contents", "list of content objects"),
    ("gemini", {"contents": [{"parts": 5}]}, "contents[0].parts", "list"),
    ("gemini", {"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text", "string"),
    ("gemini", {**GEMINI, "generationConfig": 5}, "generationConfig", "object"),
    (
        "gemini",
        {**GEMINI, "generationConfig": {"maxOutputTokens": "5"}},
        "generationConfig.maxOutputTokens",
        "tokens",
    ),
    (
        "gemini",
        {**GEMINI, "generation_config": {"candidate_count": 0}},
        "generation_config.candidate_count",
        "from 1",
    ),
]


@pytest.mark.parametrize(("dialect", "body", "field", "fix"), WRONG)
def test_a_wrong_typed_field_is_named_with_its_fix(
    dialect: str, body: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(FieldError) as caught:
        call(dialect, body)
    assert caught.value.param == field
    assert caught.value.status == 400
    assert f'"{field}" must be' in caught.value.message and fix in caught.value.message


RIGHT: list[tuple[str, dict[str, Any]]] = [
    # What SDKs and real clients send: nulls for unset fields, integral floats,
    # unknown fields (passed through untouched), every content shape.
    ("openai-chat", {**CHAT, "max_tokens": None, "stop": None, "tools": None, "seed": -3}),
    ("openai-chat", {**CHAT, "max_tokens": 100.0, "stop": "END", "n": 2, "unknown": {"x": [1]}}),
    (
        "openai-chat",
        {
            **CHAT,
            "stream": True,
            "stream_options": {"include_usage": False, "other": 1},
            "messages": [
                {"role": "system", "content": "s"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "image_url", "image_url": {"url": "data:"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c", "content": "r"},
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_object"},
        },
    ),
    (
        "openai-responses",
        {
            **RESPONSES,
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "x"}]},
                {"type": "function_call_output", "call_id": "c", "output": "o"},
            ],
        },
    ),
    (
        "anthropic",
        {
            **ANTHROPIC,
            "system": [{"type": "text", "text": "s"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tool_choice": {"type": "auto"},
        },
    ),
    (
        "gemini",
        {
            **GEMINI,
            "generationConfig": {"maxOutputTokens": 5, "thinkingConfig": {"thinkingBudget": -1}},
            "systemInstruction": {"parts": [{"text": "s"}]},
        },
    ),
]


@pytest.mark.parametrize(("dialect", "body"), RIGHT)
def test_what_real_clients_send_passes_untouched(dialect: str, body: dict[str, Any]) -> None:
    before = repr(body)
    call(dialect, body)
    assert repr(body) == before


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"model": "m", "temperature": NaN}', "NaN is not JSON"),
        (b'{"model": "m", "temperature": -Infinity}', "-Infinity is not JSON"),
        (b'{"model": "m\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"model": "m", "x": "\\udfff and more"}', "lone UTF-16 surrogate"),
        (b'{"model": "\xff"}', "not valid JSON (UTF-8)"),
        (b"[" * 100_000 + b"]" * 100_000, f"deeper than {MAX_DEPTH}"),
        (b'{"x": ' + b"[" * 200 + b"]" * 200 + b"}", f"deeper than {MAX_DEPTH}"),
        (b'{"x": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}", f"deeper than {MAX_DEPTH}"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b"", "empty"),
    ],
)
def test_bodies_python_reads_but_nothing_else_can_are_refused(raw: bytes, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_json_body(raw)
    assert words in caught.value.message


def test_bodies_that_look_odd_but_are_fine_parse() -> None:
    emoji = b'{"model": "m", "text": "\\ud83d\\ude00"}'  # an escaped pair: one emoji
    assert parse_json_body(emoji)["text"] == "\U0001f600"
    schema = b'{"tools": [' + b'{"a": ' * 60 + b"1" + b"}" * 60 + b"]}"  # deep, within the limit
    assert "tools" in parse_json_body(schema)
    assert parse_json_body(b'\xef\xbb\xbf{"model": "m"}') == {"model": "m"}  # a BOM
