"""Request translation: exact bodies for every direction, round trips, feature mappings."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.translate.samples import MODELS, expected_request, request
from tollhouse.translate import CODECS, Untranslatable, translate_request, translate_request_noted
from tollhouse.translate.model import Request, Text, ToolCall, ToolResult

DIALECTS = ("openai-chat", "anthropic", "gemini")
DIRECTIONS = [(s, t) for s in DIALECTS for t in DIALECTS if s != t]


def to(source: str, target: str, payload: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    return translate_request(source, target, payload, model=MODELS[target], stream=stream)


def openai(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": messages, **extra}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_request_translates_exactly(source: str, target: str) -> None:
    assert to(source, target, request(source)) == expected_request(source, target)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_same_dialect_returns_the_payload_itself(dialect: str) -> None:
    payload = request(dialect) | {"unknown_field": 1}
    assert translate_request(dialect, dialect, payload, model="x", stream=True) is payload


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_translation_does_not_mutate_the_payload(source: str, target: str) -> None:
    payload = request(source)
    before = copy.deepcopy(payload)
    to(source, target, payload)
    assert payload == before


def _conversation(dialect: str, payload: dict[str, Any]) -> tuple[Any, ...]:
    """Messages, system, tools and tool choice, with ids renamed by first use
    (Gemini has no ids) and JSON tool results compared as values."""
    req: Request = CODECS[dialect].decode_request(payload)
    ids: dict[str, str] = {}
    messages = []
    for message in req.messages:
        parts: list[Any] = []
        for part in message.parts:
            if isinstance(part, ToolCall):
                part = ToolCall(ids.setdefault(part.id, f"id{len(ids)}"), part.name, part.arguments)
            elif isinstance(part, ToolResult):
                content = tuple(_json_value(p) for p in part.content)
                call_id = ids.setdefault(part.call_id, f"id{len(ids)}")
                part = (call_id, part.name, content, part.is_error)
            parts.append(part)
        messages.append((message.role, parts))
    return messages, req.system, req.tools, req.tool_choice


def _json_value(part: Any) -> Any:
    if isinstance(part, Text):
        try:
            return json.loads(part.text)
        except ValueError:
            return part.text
    return part


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_round_trip_preserves_the_conversation(source: str, target: str) -> None:
    there = to(source, target, request(source))
    back = to(target, source, there)
    assert _conversation(source, back) == _conversation(source, request(source))


def test_round_trip_keeps_openai_call_ids_through_anthropic() -> None:
    back = to("anthropic", "openai-chat", to("openai-chat", "anthropic", request("openai-chat")))
    assert back == request("openai-chat")


# --- turns and system prompts


def test_consecutive_same_role_turns_merge_for_anthropic() -> None:
    payload = openai([user("a"), user("b"), {"role": "assistant", "content": "c"}, user("d")])
    assert to("openai-chat", "anthropic", payload)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"},
    ]


def test_consecutive_same_role_turns_merge_for_gemini() -> None:
    payload = openai([user("a"), user("b"), {"role": "assistant", "content": "c"}])
    assert to("openai-chat", "gemini", payload)["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}]},
    ]


def test_empty_turns_are_dropped_for_alternating_targets() -> None:
    payload = openai([user("a"), {"role": "assistant", "content": ""}, user("b")])
    assert to("openai-chat", "anthropic", payload)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_leading_system_and_developer_messages_become_one_system_prompt() -> None:
    payload = openai(
        [
            {"role": "system", "content": "One."},
            {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
            user("hi"),
        ]
    )
    assert to("openai-chat", "anthropic", payload)["system"] == "One.\n\nTwo."
    assert to("openai-chat", "gemini", payload)["systemInstruction"] == {
        "parts": [{"text": "One.\n\nTwo."}]
    }


@pytest.mark.parametrize("target", ["anthropic", "gemini"])
def test_a_mid_conversation_system_message_is_not_moved_to_the_top(target: str) -> None:
    """Hoisted, "answer in French from now on" would apply to the whole history."""
    payload = openai([user("hi"), {"role": "system", "content": "From now on, French."}])
    with pytest.raises(Untranslatable, match="system message mid-conversation"):
        to("openai-chat", target, payload)


def test_anthropic_system_blocks_become_one_openai_system_message() -> None:
    payload = {
        "model": "claude",
        "max_tokens": 10,
        "system": [
            {"type": "text", "text": "One.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Two."},
        ],
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert to("anthropic", "openai-chat", payload)["messages"] == [
        {"role": "system", "content": "One.\n\nTwo."},
        {"role": "user", "content": "hi"},
    ]


def test_gemini_model_role_and_history_map_to_assistant_turns() -> None:
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello", "thoughtSignature": "c2ln"}]},
            {"role": "user", "parts": [{"text": "bye"}]},
        ]
    }
    assert to("gemini", "openai-chat", payload)["messages"] == [
        user("hi"),
        {"role": "assistant", "content": "hello"},
        user("bye"),
    ]


def test_reasoning_history_is_dropped() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    anthropic = {
        "model": "claude",
        "max_tokens": 10,
        "messages": [
            user("hi"),
            {"role": "assistant", "content": [thinking, {"type": "text", "text": "yo"}]},
            user("and?"),
        ],
    }
    assert to("anthropic", "openai-chat", anthropic)["messages"][1] == {
        "role": "assistant",
        "content": "yo",
    }
    assert translate_request_noted(
        "anthropic", "openai-chat", anthropic, model="gpt-4o", stream=False
    ).omitted == ("earlier thinking blocks (only Anthropic can read them)",)
    gemini = {
        "contents": [
            {"role": "model", "parts": [{"text": "plan", "thought": True}, {"text": "yo"}]},
            {"role": "user", "parts": [{"text": "and?"}]},
        ]
    }
    assert to("gemini", "anthropic", gemini)["messages"] == [
        {"role": "assistant", "content": "yo"},
        user("and?"),
    ]
    noted = translate_request_noted("gemini", "anthropic", gemini, model="claude", stream=False)
    assert noted.omitted == ("thought signatures (only Gemini can read them)",)


# --- tools, calls and results


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_parallel_calls_and_results_map_to_gemini_by_name() -> None:
    payload = openai(
        [
            user("compare"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    _call("call_a", "get_weather", '{"city":"Paris"}'),
                    _call("call_b", "get_time", "{}"),
                ],
            },
            {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ]
    )
    contents = to("openai-chat", "gemini", payload)["contents"]
    assert contents[1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "skip_thought_signature_validator",
                },
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
            ],
        },
    ]


def test_gemini_calls_of_one_name_pair_with_responses_in_order() -> None:
    call = {"functionCall": {"name": "roll", "args": {}}}
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "roll twice"}]},
            {"role": "model", "parts": [call, call]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "roll", "response": {"output": "3"}}},
                    {"functionResponse": {"name": "roll", "response": {"output": "5"}}},
                ],
            },
        ]
    }
    messages = to("gemini", "openai-chat", payload)["messages"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_1_0", "call_1_1"]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_1_0", "content": "3"},
        {"role": "tool", "tool_call_id": "call_1_1", "content": "5"},
    ]


def test_gemini_call_ids_pair_results_when_present() -> None:
    payload = {
        "contents": [
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"id": "c1", "name": "roll", "args": {}}},
                    {"functionCall": {"id": "c2", "name": "roll", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "c2", "name": "roll", "response": {"n": 5}}},
                    {"functionResponse": {"id": "c1", "name": "roll", "response": {"n": 3}}},
                ],
            },
        ]
    }
    messages = to("gemini", "anthropic", payload)["messages"]
    assert messages[1]["content"] == [
        {"type": "tool_result", "tool_use_id": "c2", "content": '{"n": 5}'},
        {"type": "tool_result", "tool_use_id": "c1", "content": '{"n": 3}'},
    ]


def test_gemini_error_responses_become_error_results() -> None:
    payload = {
        "contents": [
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "f", "response": {"error": "boom"}}}],
            },
        ]
    }
    result = to("gemini", "anthropic", payload)["messages"][1]["content"][0]
    assert result == {
        "type": "tool_result",
        "tool_use_id": "call_0_0",
        "content": "boom",
        "is_error": True,
    }
    back = to("anthropic", "gemini", to("gemini", "anthropic", payload))
    assert back["contents"][1]["parts"] == payload["contents"][1]["parts"]


def test_anthropic_tool_ids_are_sanitised_consistently() -> None:
    payload = openai(
        [
            {"role": "assistant", "tool_calls": [_call("call.7:x", "f", "{}")]},
            {"role": "tool", "tool_call_id": "call.7:x", "content": "ok"},
        ]
    )
    messages = to("openai-chat", "anthropic", payload)["messages"]
    assert messages[0]["content"][0]["id"] == "call_7_x"
    assert messages[1]["content"][0]["tool_use_id"] == "call_7_x"


def test_broken_call_arguments_are_kept_not_lost() -> None:
    payload = openai(
        [
            {"role": "assistant", "tool_calls": [_call("c", "f", "{oops")]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ]
    )
    block = to("openai-chat", "anthropic", payload)["messages"][0]["content"][0]
    assert block["input"] == {"_raw": "{oops"}


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    payload = openai([user("hi")], tools=[{"type": "function", "function": {"name": "now"}}])
    empty = {"type": "object", "properties": {}}
    assert to("openai-chat", "anthropic", payload)["tools"] == [
        {"name": "now", "input_schema": empty}
    ]
    declarations = to("openai-chat", "gemini", payload)["tools"][0]["functionDeclarations"]
    assert declarations == [{"name": "now", "parametersJsonSchema": empty}]


def test_gemini_openapi_parameters_become_json_schema() -> None:
    parameters = {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "nullable": True},
            "days": {"type": "ARRAY", "items": {"type": "INTEGER"}},
        },
        "propertyOrdering": ["city", "days"],
        "required": ["city"],
    }
    payload = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": parameters}]}],
    }
    assert to("gemini", "openai-chat", payload)["tools"][0]["function"]["parameters"] == {
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"]},
            "days": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["city"],
    }


def test_gemini_snake_case_fields_are_read() -> None:
    payload = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "AAAA"}}]}
        ],
        "tools": [{"function_declarations": [{"name": "f"}]}],
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
        "generation_config": {"max_output_tokens": 7, "stop_sequences": ["x"], "top_k": 3},
    }
    body = to("gemini", "anthropic", payload)
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 7
    assert body["stop_sequences"] == ["x"]
    assert body["tool_choice"] == {"type": "none"}
    image = {"type": "base64", "media_type": "image/png", "data": "AAAA"}
    assert body["messages"] == [{"role": "user", "content": [{"type": "image", "source": image}]}]


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("openai_choice", "anthropic_choice", "gemini_config"),
    [
        ("auto", {"type": "auto"}, {"mode": "AUTO"}),
        ("none", {"type": "none"}, {"mode": "NONE"}),
        ("required", {"type": "any"}, {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"type": "tool", "name": "f"},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
    ],
)
def test_tool_choice_maps_between_all_dialects(
    openai_choice: Any, anthropic_choice: dict[str, Any], gemini_config: dict[str, Any]
) -> None:
    payload = openai([user("hi")], tools=[TOOL], tool_choice=openai_choice)
    anthropic = to("openai-chat", "anthropic", payload)
    gemini = to("openai-chat", "gemini", payload)
    assert anthropic["tool_choice"] == anthropic_choice
    assert gemini["toolConfig"] == {"functionCallingConfig": gemini_config}
    assert to("anthropic", "openai-chat", anthropic)["tool_choice"] == openai_choice
    assert to("gemini", "openai-chat", gemini)["tool_choice"] == openai_choice
    assert to("gemini", "anthropic", gemini)["tool_choice"] == anthropic_choice


def test_parallel_tool_calls_off_maps_to_anthropic_and_back() -> None:
    payload = openai([user("hi")], tools=[TOOL], parallel_tool_calls=False)
    anthropic = to("openai-chat", "anthropic", payload)
    assert anthropic["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert to("anthropic", "openai-chat", anthropic)["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in str(to("openai-chat", "gemini", payload))


def test_tool_choice_without_tools_is_not_sent() -> None:
    payload = openai([user("hi")], tool_choice="none", parallel_tool_calls=True)
    assert "tool_choice" not in to("openai-chat", "anthropic", payload)
    assert "toolConfig" not in to("openai-chat", "gemini", payload)


def test_allowed_tools_narrow_the_tool_list() -> None:
    other = {"type": "function", "function": {"name": "g"}}
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "g"}}],
        },
    }
    body = to(
        "openai-chat", "anthropic", openai([user("hi")], tools=[TOOL, other], tool_choice=choice)
    )
    assert [t["name"] for t in body["tools"]] == ["g"]
    assert (body["tool_choice"], body["max_tokens"]) == ({"type": "any"}, 4096)
    gemini = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}, {"name": "h"}]}],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", "h"]}
        },
    }
    body = to("gemini", "openai-chat", gemini)
    assert [t["function"]["name"] for t in body["tools"]] == ["f", "h"]
    assert body["tool_choice"] == "required"


# --- media


def test_image_url_goes_to_anthropic_as_a_url_source() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}}
    payload = openai([{"role": "user", "content": [part]}])
    block = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    assert to("openai-chat", "anthropic", payload)["messages"][0]["content"] == [block]
    back = to("anthropic", "openai-chat", to("openai-chat", "anthropic", payload))
    assert back["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
    ]


def test_gemini_https_file_data_becomes_an_image_url() -> None:
    file = {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/a.jpg"}}
    payload = {"contents": [{"role": "user", "parts": [file]}]}
    assert to("gemini", "openai-chat", payload)["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}
    ]


def test_openai_audio_goes_to_gemini_inline() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    payload = openai([{"role": "user", "content": [audio]}])
    parts = to("openai-chat", "gemini", payload)["contents"][0]["parts"]
    assert parts == [{"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}]
    back = to("gemini", "openai-chat", to("openai-chat", "gemini", payload))
    assert back["messages"][0]["content"] == [audio]


def test_pdf_files_map_to_anthropic_documents_and_back() -> None:
    file = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    payload = openai([{"role": "user", "content": [file]}])
    source = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}
    body = to("openai-chat", "anthropic", payload)
    assert body["messages"][0]["content"] == [{"type": "document", "source": source}]
    back = to("anthropic", "openai-chat", body)["messages"][0]["content"][0]
    assert back["file"]["file_data"] == "data:application/pdf;base64,JVBERi0="


# --- sampling, limits, reasoning, output format


def test_sampling_parameters_map_to_gemini_and_openai() -> None:
    payload = openai(
        [user("hi")],
        temperature=0.3,
        top_p=0.8,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        max_tokens=99,
        stop="END",
    )
    assert to("openai-chat", "gemini", payload)["generationConfig"] == {
        "maxOutputTokens": 99,
        "temperature": 0.3,
        "topP": 0.8,
        "stopSequences": ["END"],
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
    }
    gemini = to("openai-chat", "gemini", payload)
    back = translate_request("gemini", "openai-chat", gemini, model="gpt-4.1", stream=False)
    assert {k: back[k] for k in ("temperature", "top_p", "seed", "max_completion_tokens")} == {
        "temperature": 0.3,
        "top_p": 0.8,
        "seed": 7,
        "max_completion_tokens": 99,
    }


def test_anthropic_gets_no_sampling_parameters() -> None:
    """Claude Opus 4.7+ answers 400 to temperature, top_p and top_k."""
    payload = openai([user("hi")], temperature=0.3, top_p=0.8, seed=1, max_completion_tokens=5)
    body = to("openai-chat", "anthropic", payload)
    assert body == {
        "model": "claude-opus-4-8",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_anthropic_sampling_from_older_clients_still_reaches_gemini() -> None:
    payload = {
        "model": "claude",
        "max_tokens": 50,
        "temperature": 0.1,
        "top_p": 0.5,
        "top_k": 40,
        "messages": [user("hi")],
    }
    config = to("anthropic", "gemini", payload)["generationConfig"]
    assert config == {"maxOutputTokens": 50, "temperature": 0.1, "topP": 0.5, "topK": 40}


def test_anthropic_max_tokens_defaults_when_the_client_gave_none() -> None:
    assert to("openai-chat", "anthropic", openai([user("hi")]))["max_tokens"] == 4096
    gemini = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert to("gemini", "anthropic", gemini)["max_tokens"] == 4096
    thinking = openai([user("hi")], reasoning_effort="high")
    assert to("openai-chat", "anthropic", thinking)["max_tokens"] == 4096 + 24576


@pytest.mark.parametrize(
    ("effort", "anthropic", "gemini_budget"),
    [
        ("none", {"thinking": {"type": "disabled"}}, 128),  # 2.5 Pro always thinks
        ("minimal", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, 512),
        ("low", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, 1024),
        ("medium", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"}}, 8192),
        ("high", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}, 24576),
        ("xhigh", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "xhigh"}}, 32768),
    ],
)
def test_reasoning_effort_maps_to_thinking(
    effort: str, anthropic: dict[str, Any], gemini_budget: int
) -> None:
    payload = openai([user("hi")], reasoning_effort=effort, max_completion_tokens=40000)
    body = to("openai-chat", "anthropic", payload)
    assert {k: body[k] for k in anthropic} == anthropic
    assert set(body) - set(anthropic) == {"model", "max_tokens", "messages"}
    config = to("openai-chat", "gemini", payload)["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": gemini_budget}


@pytest.mark.parametrize(
    ("thinking", "openai_effort", "gemini_budget"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 8000}}, "medium", 8000),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "medium", 2000),
        ({"thinking": {"type": "adaptive"}}, None, -1),
        # GPT-5.5 has no "max": its nearest effort, named
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, "xhigh", 32768),
        ({"output_config": {"effort": "low"}}, "low", 1024),
        ({"thinking": {"type": "disabled"}}, "none", 128),
    ],
)
def test_anthropic_thinking_maps_to_effort_and_budget(
    thinking: dict[str, Any], openai_effort: str | None, gemini_budget: int
) -> None:
    payload = {"model": "claude", "max_tokens": 10, "messages": [user("hi")], **thinking}
    assert to("anthropic", "openai-chat", payload).get("reasoning_effort") == openai_effort
    config = to("anthropic", "gemini", payload)["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": gemini_budget}


@pytest.mark.parametrize(
    ("thinking_config", "openai_effort", "anthropic"),
    [
        ({"thinkingBudget": 0}, "none", {"type": "disabled"}),
        ({"thinkingBudget": -1}, None, {"type": "adaptive"}),
        ({"thinkingBudget": 20000}, "high", {"type": "adaptive"}),
        ({"thinkingLevel": "LOW"}, "low", {"type": "adaptive"}),
    ],
)
def test_gemini_thinking_maps_to_effort(
    thinking_config: dict[str, Any], openai_effort: str | None, anthropic: dict[str, Any]
) -> None:
    payload = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": thinking_config},
    }
    assert to("gemini", "openai-chat", payload).get("reasoning_effort") == openai_effort
    assert to("gemini", "anthropic", payload)["thinking"] == anthropic


SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def test_json_schema_output_maps_everywhere() -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    payload = openai([user("hi")], response_format=fmt)
    anthropic = to("openai-chat", "anthropic", payload)
    assert anthropic["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    gemini = to("openai-chat", "gemini", payload)["generationConfig"]
    assert gemini == {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}
    back = to("anthropic", "openai-chat", anthropic)["response_format"]
    spec = {"name": "response", "schema": SCHEMA, "strict": True}  # Anthropic always enforces
    assert back == {"type": "json_schema", "json_schema": spec}


def test_json_mode_maps_to_gemini_mime_type() -> None:
    payload = openai([user("hi")], response_format={"type": "json_object"})
    config = to("openai-chat", "gemini", payload)["generationConfig"]
    assert config == {"responseMimeType": "application/json"}
    assert to("gemini", "openai-chat", to("openai-chat", "gemini", payload))["response_format"] == {
        "type": "json_object"
    }


def test_gemini_openapi_response_schema_becomes_json_schema() -> None:
    payload = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
        },
    }
    fmt = to("gemini", "openai-chat", payload)["response_format"]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    spec = {"name": "response", "schema": schema, "strict": True}
    assert fmt == {"type": "json_schema", "json_schema": spec}


# --- stream flags, users, what is left behind


def test_stream_flags() -> None:
    payload = request("anthropic")
    body = to("anthropic", "openai-chat", payload, stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert to("openai-chat", "anthropic", request("openai-chat"), stream=True)["stream"] is True
    assert "stream" not in to("openai-chat", "gemini", request("openai-chat"), stream=True)


def test_end_user_ids_map_between_openai_and_anthropic() -> None:
    body = to("openai-chat", "anthropic", openai([user("hi")], user="u-1"))
    assert body["metadata"] == {"user_id": "u-1"}
    assert to("anthropic", "openai-chat", body)["user"] == "u-1"


def test_harmless_unknown_fields_are_left_behind() -> None:
    payload = openai(
        [{"role": "user", "content": "hi", "name": "ann"}],
        store=True,
        metadata={"k": "v"},
        service_tier="flex",
        prompt_cache_key="p",
        verbosity="low",
        n=1,
        logprobs=False,
        modalities=["text"],
        brand_new_field={"x": 1},
    )
    assert to("openai-chat", "anthropic", payload) == {
        "model": "claude-opus-4-8",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert to("openai-chat", "gemini", payload) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    }
    gemini = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"responseMimeType": "text/plain", "candidateCount": 1},
    }
    assert to("gemini", "openai-chat", gemini) == openai([user("hi")])


def test_thinking_is_off_when_the_tool_choice_forces_a_tool() -> None:
    """Anthropic refuses thinking together with a forced tool; the effort still goes."""
    payload = openai([user("hi")], tools=[TOOL], tool_choice="required", reasoning_effort="high")
    body = to("openai-chat", "anthropic", payload)
    assert body["thinking"] == {"type": "disabled"}
    assert body["output_config"] == {"effort": "high"}
    assert (body["tool_choice"], body["max_tokens"]) == ({"type": "any"}, 4096)
