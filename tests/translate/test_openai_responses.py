"""The Responses codec (issue 17): requests, answers, errors and streams, both ways."""

from __future__ import annotations

from typing import Any

import pytest

from tests.translate.samples import ANTHROPIC_RESPONSE, OPENAI_RESPONSE, openai_request
from tests.translate.streams import ANTHROPIC_STREAM, OPENAI_STREAM, events, translate
from tollhouse.translate import (
    Untranslatable,
    error_translate,
    translate_request_noted,
    translate_response,
)

CALL = {"type": "function_call", "call_id": "call_1", "name": "get_weather"}


def _responses(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-5-codex",
        "instructions": "You are terse.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
            CALL | {"arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c":21}'},
        ],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            }
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "max_output_tokens": 300,
        **extra,
    }


def test_a_tool_loop_reaches_anthropic_with_reasoning_items_named() -> None:
    done = translate_request_noted(
        "openai-responses", "anthropic", _responses(), model="claude-sonnet-4-5", stream=False
    )
    assert done.body["system"] == "You are terse."
    assert done.body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c":21}'}
            ],
        },
    ]
    assert done.body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert done.omitted == ("earlier reasoning items (only OpenAI can read them)",)


def test_chat_to_responses_and_back_keeps_the_conversation() -> None:
    chat = openai_request()
    del chat["stop"]
    there = translate_request_noted(
        "openai-chat", "openai-responses", chat, model="gpt-5-codex", stream=False
    )
    assert there.omitted == ()
    assert there.body["instructions"] == "You are terse."
    assert [i.get("type", i.get("role")) for i in there.body["input"]] == [
        "user",
        "assistant",
        "function_call",
        "function_call_output",
        "user",
    ]
    back = translate_request_noted(
        "openai-responses", "openai-chat", there.body, model="gpt-5.5", stream=False
    )
    assert back.body["messages"] == chat["messages"]


def test_previous_response_id_skips_the_candidate_with_a_reason() -> None:
    with pytest.raises(Untranslatable, match="previous_response_id"):
        translate_request_noted(
            "openai-responses",
            "anthropic",
            _responses(previous_response_id="resp_1"),
            model="claude-sonnet-4-5",
            stream=False,
        )


def test_structured_output_and_summary() -> None:
    fmt = {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
    payload = _responses(text={"format": fmt}, reasoning={"effort": "high", "summary": "auto"})
    done = translate_request_noted(
        "openai-responses", "openai-chat", payload, model="gpt-5.5", stream=False
    )
    assert done.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    assert done.body["reasoning_effort"] == "high"
    assert "reasoning.summary (reasoning is not shown across dialects)" in done.omitted
    back = translate_request_noted(
        "openai-chat", "openai-responses", done.body, model="gpt-5-codex", stream=False
    )
    assert back.body["text"] == {"format": fmt}
    assert back.body["reasoning"] == {"effort": "high"}


def test_stop_sequences_do_not_translate_to_responses() -> None:
    with pytest.raises(Untranslatable, match="stop sequences"):
        translate_request_noted(
            "openai-chat", "openai-responses", openai_request(), model="gpt-5-codex", stream=False
        )


def test_answers_both_ways() -> None:
    answer = translate_response("openai-responses", "openai-chat", OPENAI_RESPONSE, model="m")
    assert answer["status"] == "completed"
    assert [item["type"] for item in answer["output"]] == ["message", "function_call"]
    assert answer["output"][1]["arguments"] == '{"city":"Rome"}'
    assert answer["usage"]["input_tokens_details"] == {"cached_tokens": 100}
    chat = translate_response("openai-chat", "openai-responses", answer, model="m")
    assert (
        chat["choices"][0]["message"]["tool_calls"]
        == OPENAI_RESPONSE["choices"][0]["message"]["tool_calls"]
    )
    assert chat["choices"][0]["finish_reason"] == "tool_calls"
    assert chat["usage"] == OPENAI_RESPONSE["usage"]
    claude = translate_response("anthropic", "openai-responses", answer, model="m")
    assert claude["content"] == [
        *ANTHROPIC_RESPONSE["content"][:1],
        {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Rome"}},
    ]


def test_errors_are_openai_shaped() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}'
    out = error_translate("openai-responses", "anthropic", 529, body)
    assert (
        out
        == b'{"error": {"message": "busy", "type": "server_error", "param": null, "code": null}}'
    )


def test_a_stream_from_anthropic_is_the_full_event_sequence() -> None:
    got = events(translate("openai-responses", "anthropic", [ANTHROPIC_STREAM]))
    assert [name for name, _ in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in got] == list(range(len(got)))
    assert all(name == data["type"] for name, data in got)
    message_id = got[2][1]["item"]["id"]
    assert {data["item_id"] for _, data in got[3:8]} == {message_id}
    call_id = got[9][1]["item"]["id"]
    assert call_id != message_id
    assert {data["item_id"] for _, data in got[10:13]} == {call_id}
    final = got[-1][1]["response"]
    assert [item["id"] for item in final["output"]] == [message_id, call_id]
    assert final["output"][1]["arguments"] == '{"city":"Rome"}'
    assert final["usage"]["input_tokens"] == 120 and final["usage"]["output_tokens"] == 30


@pytest.mark.parametrize("cut", [1, 7, 64])
def test_a_responses_stream_read_by_chat_clients(cut: int) -> None:
    responses = translate("openai-responses", "openai-chat", [OPENAI_STREAM])
    chunks = [responses[i : i + cut] for i in range(0, len(responses), cut)]
    chat = translate("openai-chat", "openai-responses", chunks)
    again = events(chat)
    text = "".join(
        d["choices"][0]["delta"].get("content") or "" for _, d in again[:-1] if d["choices"]
    )
    assert text == "Checking."
    finish = [d["choices"][0]["finish_reason"] for _, d in again[:-1] if d["choices"]][-1]
    assert finish == "tool_calls"
    assert again[-2][1]["usage"]["prompt_tokens"] == 120
    assert again[-1] == (None, "[DONE]")
