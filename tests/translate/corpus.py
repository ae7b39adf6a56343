"""The requests the differential matrix (``test_matrix.py``) sends, per client dialect:
the samples' conversation, each request field group, and each case of issue 16.

A :class:`Case` may swap an upstream's canned answer (``answers``: a failed
Gemini generation) and names the targets it must be skipped for (``skip``:
target -> a phrase of the reason the client must see).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.translate.samples import (
    ANTHROPIC_TOOLS,
    GEMINI_TOOLS,
    OPENAI_TOOLS,
    RESPONSES_TOOLS,
    SCHEMA,
    request,
)


@dataclass(frozen=True)
class Case:
    name: str
    payload: dict[str, Any]
    answers: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


_MALFORMED = {
    "candidates": [
        {
            "content": {"role": "model", "parts": []},
            "finishReason": "MALFORMED_FUNCTION_CALL",
            "finishMessage": "Malformed function call: get_weather(city=",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 0, "totalTokenCount": 12},
    "modelVersion": "gemini-2.5-flash",
}
GEMINI_FAILS = {
    "gemini": (
        json.dumps(_MALFORMED).encode(),
        b"data: " + json.dumps(_MALFORMED).encode() + b"\r\n\r\n",
    )
}


NO_STOP = {"openai-responses": "stop sequences"}


def _without_stop(dialect: str) -> dict[str, Any]:
    """The conversation, minus the stop sequences Responses has no way to honour."""
    payload = {k: v for k, v in request(dialect).items() if k not in ("model", "stop")}
    payload.pop("stop_sequences", None)
    if dialect == "gemini":
        payload["generationConfig"] = {"maxOutputTokens": 256}
    return payload


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _openai(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"messages": messages, **extra}


_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
_LOOP = [_user("Weather?"), {"role": "assistant", "content": None, "tool_calls": [_CALL]}]

OPENAI = [
    Case(
        "conversation",
        {k: v for k, v in request("openai-chat").items() if k != "model"},
        skip=NO_STOP,
    ),
    Case("conversation_without_stop", _without_stop("openai-chat")),
    Case(
        "sampling",
        _openai(
            [_user("hi")],
            temperature=0.2,
            top_p=0.9,
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=0.25,
            max_completion_tokens=64,
            stop=["END"],
            user="u-1",
        ),
        skip=NO_STOP,
    ),
    Case(
        "reasoning_tool_loop",
        _openai(
            [*_LOOP, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
            tools=OPENAI_TOOLS,
            reasoning_effort="high",
        ),
    ),
    Case("reasoning_none", _openai([_user("hi")], reasoning_effort="none")),
    Case(
        "multi_part_result",
        _openai(
            [
                *_LOOP,
                {
                    "role": "tool",
                    "tool_call_id": "call_1",
                    "content": [
                        {"type": "text", "text": "Paris: 18C"},
                        {"type": "text", "text": "Lyon: 21C"},
                    ],
                },
            ],
            tools=OPENAI_TOOLS,
        ),
    ),
    Case(
        "strict_schemas",
        _openai(
            [_user("hi")],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
            },
        ),
    ),
    Case(
        "named_user_and_unknown_fields",
        _openai(
            [{"role": "user", "content": "hi", "name": "ann"}],
            store=True,
            verbosity="low",
            parallel_tool_calls=False,
            tools=OPENAI_TOOLS,
            tool_choice="required",
        ),
    ),
    Case(
        "mid_conversation_system",
        _openai([_user("hi"), {"role": "system", "content": "From now on, French."}]),
        skip={
            "anthropic": "system message mid-conversation",
            "gemini": "mid-conversation",
            "openai-responses": "mid-conversation",
        },
    ),
    Case(
        "trailing_assistant",
        _openai([_user("hi"), {"role": "assistant", "content": "Sure, "}]),
        skip={"anthropic": "trailing assistant message"},
    ),
    Case("gemini_fails", _openai([_user("Weather?")], tools=OPENAI_TOOLS), answers=GEMINI_FAILS),
]


def _anthropic(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"max_tokens": 256, "messages": messages, **extra}


_USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}


def _result(content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": "toolu_1", "content": content, **extra}


def _tool_turn(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _user("Weather?"),
        {"role": "assistant", "content": list(blocks)},
        {"role": "user", "content": [_result("sunny")]},
    ]


ANTHROPIC = [
    Case(
        "conversation",
        {k: v for k, v in request("anthropic").items() if k != "model"},
        skip=NO_STOP,
    ),
    Case("conversation_without_stop", _without_stop("anthropic")),
    Case(
        "sampling",
        _anthropic([_user("hi")], temperature=0.2, top_k=40, stop_sequences=["END"]),
        skip=NO_STOP,
    ),
    Case(
        "thinking_tool_loop_from_a_fallback",
        _anthropic(
            _tool_turn(_USE),
            tools=ANTHROPIC_TOOLS,
            thinking={"type": "enabled", "budget_tokens": 2048},
        ),
    ),
    Case(
        "thinking_tool_loop_native",
        _anthropic(
            _tool_turn({"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"}, _USE),
            tools=ANTHROPIC_TOOLS,
            thinking={"type": "enabled", "budget_tokens": 2048},
        ),
    ),
    Case(
        "error_and_multi_part_results",
        _anthropic(
            [
                _user("Weather?"),
                {"role": "assistant", "content": [_USE, _USE | {"id": "toolu_2"}]},
                {
                    "role": "user",
                    "content": [
                        _result("city unknown", is_error=True),
                        _result(
                            [
                                {"type": "text", "text": "Paris: 18C"},
                                {"type": "text", "text": "Lyon: 21C"},
                            ]
                        )
                        | {"tool_use_id": "toolu_2"},
                    ],
                },
            ],
            tools=ANTHROPIC_TOOLS,
        ),
    ),
    Case(
        "prefill",
        _anthropic([_user("hi"), {"role": "assistant", "content": "{"}]),
        skip={
            "openai-chat": "assistant prefill",
            "gemini": "assistant prefill",
            "openai-responses": "assistant prefill",
        },
    ),
    Case(
        "gemini_fails", _anthropic([_user("Weather?")], tools=ANTHROPIC_TOOLS), answers=GEMINI_FAILS
    ),
]


def _gemini(*turns: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"contents": list(turns), **extra}


def _gemini_user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


_FUNCTION_CALL = {
    "role": "model",
    "parts": [
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": "c2lnbmF0dXJl",
        }
    ],
}

GEMINI = [
    Case("conversation", request("gemini"), skip=NO_STOP),
    Case("conversation_without_stop", _without_stop("gemini")),
    Case(
        "sampling",
        _gemini(
            _gemini_user("hi"),
            generationConfig={
                "temperature": 0.2,
                "topP": 0.9,
                "topK": 40,
                "seed": 7,
                "maxOutputTokens": 64,
                "stopSequences": ["END"],
            },
        ),
        skip=NO_STOP,
    ),
    Case(
        "thinking_and_signatures",
        _gemini(
            _gemini_user("Weather?"),
            _FUNCTION_CALL,
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"error": "no such city"},
                        }
                    }
                ],
            },
            tools=GEMINI_TOOLS,
            generationConfig={"thinkingConfig": {"thinkingBudget": 4096}},
        ),
    ),
    Case(
        "relaxed_safety",
        _gemini(
            _gemini_user("hi"),
            safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        ),
    ),
    Case(
        "strict_safety",
        _gemini(
            _gemini_user("hi"),
            safetySettings=[
                {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}
            ],
        ),
        skip={
            "openai-chat": "safetySettings",
            "anthropic": "safetySettings",
            "openai-responses": "safetySettings",
        },
    ),
    Case(
        "json_schema",
        _gemini(
            _gemini_user("hi"),
            generationConfig={"responseMimeType": "application/json", "responseJsonSchema": SCHEMA},
        ),
    ),
    Case(
        "gemini_fails", _gemini(_gemini_user("Weather?"), tools=GEMINI_TOOLS), answers=GEMINI_FAILS
    ),
]


def _responses(items: list[dict[str, Any]] | str, **extra: Any) -> dict[str, Any]:
    return {"input": items, **extra}


_FUNCTION_CALL = {
    "type": "function_call",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
}
_OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
_REASONING = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}

RESPONSES = [
    Case("conversation", {k: v for k, v in request("openai-responses").items() if k != "model"}),
    Case("plain_string", _responses("hi", instructions="Be brief.", temperature=0.2)),
    Case(
        "reasoning_tool_loop",
        _responses(
            [_user("Weather?"), _REASONING, _FUNCTION_CALL, _OUTPUT],
            tools=RESPONSES_TOOLS,
            reasoning={"effort": "high", "summary": "auto"},
            include=["reasoning.encrypted_content"],
            store=False,
        ),
    ),
    Case(
        "json_schema",
        _responses(
            [_user("hi")],
            text={
                "format": {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}
            },
        ),
    ),
    Case(
        "previous_response_id",
        _responses([_OUTPUT], previous_response_id="resp_0", tools=RESPONSES_TOOLS),
        skip={
            "openai-chat": "previous_response_id",
            "anthropic": "previous_response_id",
            "gemini": "previous_response_id",
        },
    ),
    Case(
        "gemini_fails", _responses([_user("Weather?")], tools=RESPONSES_TOOLS), answers=GEMINI_FAILS
    ),
]

CORPUS = {
    "openai-chat": OPENAI,
    "openai-responses": RESPONSES,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
}
