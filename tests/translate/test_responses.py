"""Response translation: exact bodies for every direction, stop reasons, usage."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.translate.conftest import NOW
from tests.translate.samples import ANTHROPIC_RESPONSE, GEMINI_RESPONSE, OPENAI_RESPONSE
from tollhouse.translate import (
    CODECS,
    GenerationFailed,
    anthropic,
    failure_body,
    gemini,
    openai_chat,
    translate_request,
    translate_response,
)
from tollhouse.translate.anthropic import AnthropicStreamEncoder
from tollhouse.translate.gemini import DUMMY_SIGNATURE
from tollhouse.translate.model import Response, StopReason, Usage
from tollhouse.translate.stream import Done, Finish

DIALECTS = ("openai-chat", "anthropic", "gemini")
RESPONSES = {
    "openai-chat": OPENAI_RESPONSE,
    "anthropic": ANTHROPIC_RESPONSE,
    "gemini": GEMINI_RESPONSE,
}
# Upstream ids of the tool call: Gemini's is synthesised from the response id.
CALL_IDS = {"openai-chat": "call_9", "anthropic": "toolu_9", "gemini": "call_0_resp-1"}
RESPONSE_IDS = {"openai-chat": "chatcmpl-1", "anthropic": "msg_1", "gemini": "resp-1"}


def expected(source: str, target: str) -> dict[str, Any]:
    """The sample answer of ``target`` as the ``source`` client sees it."""
    call_id, response_id = CALL_IDS[target], RESPONSE_IDS[target]
    if source == "openai-chat":
        body = copy.deepcopy(OPENAI_RESPONSE) | {"id": response_id, "model": "client-model"}
        body["created"] = 1_700_000_000 if target == "openai-chat" else NOW
        body["choices"][0]["message"]["tool_calls"][0]["id"] = call_id
        return body
    if source == "anthropic":
        body = copy.deepcopy(ANTHROPIC_RESPONSE) | {"id": response_id, "model": "client-model"}
        body["content"][1]["id"] = call_id
        return body
    body = copy.deepcopy(GEMINI_RESPONSE) | {
        "responseId": response_id,
        "modelVersion": "client-model",
    }
    body["candidates"][0]["content"]["parts"][1]["functionCall"]["id"] = call_id
    body["candidates"][0]["content"]["parts"][1]["thoughtSignature"] = DUMMY_SIGNATURE
    return body


@pytest.mark.parametrize(
    ("source", "target"), [(s, t) for s in DIALECTS for t in DIALECTS if s != t]
)
def test_response_translates_exactly(source: str, target: str) -> None:
    body = translate_response(source, target, RESPONSES[target], model="client-model")
    assert body == expected(source, target)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_same_dialect_returns_the_body_itself(dialect: str) -> None:
    body = RESPONSES[dialect]
    assert translate_response(dialect, dialect, body, model="other") is body


def test_a_gemini_call_id_given_to_the_client_finds_its_way_back() -> None:
    """The OpenAI client answers the synthesised id; the next request names the tool."""
    answer = translate_response("openai-chat", "gemini", GEMINI_RESPONSE, model="gpt")
    message = answer["choices"][0]["message"]
    call_id = message["tool_calls"][0]["id"]
    follow_up = {
        "model": "gpt",
        "messages": [
            {"role": "user", "content": "Weather in Rome?"},
            {k: v for k, v in message.items() if k != "refusal"},
            {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
        ],
    }
    body = translate_request("openai-chat", "gemini", follow_up, model="g", stream=False)
    assert body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}],
    }
    assert translate_response("openai-chat", "gemini", GEMINI_RESPONSE, model="gpt") == answer


def _openai(finish: str, refusal: str | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": "x", "refusal": refusal}
    return {
        "id": "c",
        "created": 1,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


def _anthropic(stop: str) -> dict[str, Any]:
    return {"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": stop}


def _gemini(finish: str) -> dict[str, Any]:
    candidate = {"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": finish}
    return {"candidates": [candidate], "responseId": "r"}


# (upstream body, neutral stop, what each client dialect is told)
STOPS: list[tuple[str, dict[str, Any], StopReason, str, str, str]] = [
    ("openai-chat", _openai("stop"), StopReason.END, "stop", "end_turn", "STOP"),
    ("openai-chat", _openai("length"), StopReason.LENGTH, "length", "max_tokens", "MAX_TOKENS"),
    ("openai-chat", _openai("tool_calls"), StopReason.TOOL_CALLS, "tool_calls", "tool_use", "STOP"),
    (
        "openai-chat",
        _openai("content_filter"),
        StopReason.CONTENT_FILTER,
        "content_filter",
        "refusal",
        "SAFETY",
    ),
    (
        "openai-chat",
        _openai("stop", "No."),
        StopReason.REFUSAL,
        "content_filter",
        "refusal",
        "SAFETY",
    ),
    ("anthropic", _anthropic("end_turn"), StopReason.END, "stop", "end_turn", "STOP"),
    (
        "anthropic",
        _anthropic("max_tokens"),
        StopReason.LENGTH,
        "length",
        "max_tokens",
        "MAX_TOKENS",
    ),
    ("anthropic", _anthropic("tool_use"), StopReason.TOOL_CALLS, "tool_calls", "tool_use", "STOP"),
    (
        "anthropic",
        _anthropic("stop_sequence"),
        StopReason.STOP_SEQUENCE,
        "stop",
        "stop_sequence",
        "STOP",
    ),
    ("anthropic", _anthropic("refusal"), StopReason.REFUSAL, "content_filter", "refusal", "SAFETY"),
    (
        "anthropic",
        _anthropic("model_context_window_exceeded"),
        StopReason.LENGTH,
        "length",
        "max_tokens",
        "MAX_TOKENS",
    ),
    ("anthropic", _anthropic("pause_turn"), StopReason.OTHER, "stop", "end_turn", "OTHER"),
    ("gemini", _gemini("STOP"), StopReason.END, "stop", "end_turn", "STOP"),
    ("gemini", _gemini("MAX_TOKENS"), StopReason.LENGTH, "length", "max_tokens", "MAX_TOKENS"),
    ("gemini", _gemini("SAFETY"), StopReason.CONTENT_FILTER, "content_filter", "refusal", "SAFETY"),
    (
        "gemini",
        _gemini("RECITATION"),
        StopReason.CONTENT_FILTER,
        "content_filter",
        "refusal",
        "SAFETY",
    ),
]


@pytest.mark.parametrize(
    ("target", "body", "neutral", "to_openai", "to_anthropic", "to_gemini"), STOPS
)
def test_stop_reasons_map_between_dialects(
    target: str,
    body: dict[str, Any],
    neutral: StopReason,
    to_openai: str,
    to_anthropic: str,
    to_gemini: str,
) -> None:
    assert CODECS[target].decode_response(body).stop is neutral
    told = {"openai-chat": to_openai, "anthropic": to_anthropic, "gemini": to_gemini}
    for client, reason in told.items():
        if client == target:
            continue
        out = translate_response(client, target, body, model="m")
        assert _stop_of(client, out) == reason


@pytest.mark.parametrize("reason", ["MALFORMED_FUNCTION_CALL", "OTHER", "UNEXPECTED_TOOL_CALL"])
@pytest.mark.parametrize("client", ["openai-chat", "anthropic"])
def test_a_failed_gemini_generation_is_an_error_not_an_empty_answer(
    reason: str, client: str
) -> None:
    """Issue 16 item 5: a normal stop/end_turn would hide the failure from the agent."""
    body = _gemini(reason) | {"candidates": [{"finishReason": reason, "finishMessage": "bad"}]}
    with pytest.raises(GenerationFailed) as failed:
        translate_response(client, "gemini", body, model="m")
    assert failed.value.error.status == 502
    assert reason in failed.value.error.message and "bad" in failed.value.error.message
    rendered = json.loads(failure_body(client, failed.value.error))
    assert reason in json.dumps(rendered)


def test_gemini_answers_without_a_response_id_get_a_stable_one() -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}]}
    first = translate_response("openai-chat", "gemini", body, model="m")["id"]
    assert first.startswith("gen-") and len(first) == 28
    assert translate_response("openai-chat", "gemini", body, model="m")["id"] == first


def _stop_of(dialect: str, body: dict[str, Any]) -> str:
    if dialect == "openai-chat":
        return str(body["choices"][0]["finish_reason"])
    if dialect == "anthropic":
        return str(body["stop_reason"])
    return str(body["candidates"][0]["finishReason"])


def test_gemini_stop_with_function_calls_is_a_tool_call_stop() -> None:
    assert (
        translate_response("anthropic", "gemini", GEMINI_RESPONSE, model="m")["stop_reason"]
        == "tool_use"
    )


def test_gemini_blocked_prompt_is_a_content_filter_stop() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r"}
    out = translate_response("openai-chat", "gemini", body, model="m")
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None


def test_anthropic_stop_sequence_reaches_an_anthropic_client_through_the_stream() -> None:
    encoder = AnthropicStreamEncoder("m")
    encoder.encode(Finish(StopReason.STOP_SEQUENCE, "###"))
    assert b'"stop_reason":"stop_sequence","stop_sequence":"###"' in encoder.encode(Done())


def test_gemini_text_parts_are_joined_and_thoughts_dropped() -> None:
    parts = [{"text": "thinking...", "thought": True}, {"text": "Hel"}, {"text": "lo"}]
    body = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
    out = translate_response("anthropic", "gemini", body, model="m")
    assert out["content"] == [{"type": "text", "text": "Hello"}]


# Usage: 1000 input tokens of which 600 cache reads and 100 cache writes,
# 50 output tokens of which 20 reasoning, as each dialect reports it.
USAGE = Usage(
    input_tokens=1000,
    output_tokens=50,
    cache_read_tokens=600,
    cache_write_tokens=100,
    reasoning_tokens=20,
)
ANTHROPIC_USAGE = {
    "input_tokens": 300,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 600,
    "output_tokens": 50,
    "output_tokens_details": {"thinking_tokens": 20},
}
OPENAI_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 50,
    "total_tokens": 1050,
    "prompt_tokens_details": {"cached_tokens": 600},
    "completion_tokens_details": {"reasoning_tokens": 20},
}
GEMINI_USAGE = {
    "promptTokenCount": 1000,
    "candidatesTokenCount": 30,
    "totalTokenCount": 1050,
    "cachedContentTokenCount": 600,
    "thoughtsTokenCount": 20,
}


def test_usage_maps_cache_and_reasoning_between_dialects() -> None:
    assert anthropic.decode_usage(ANTHROPIC_USAGE) == USAGE
    assert anthropic.encode_usage(USAGE) == ANTHROPIC_USAGE
    assert openai_chat.encode_usage(USAGE) == OPENAI_USAGE
    assert gemini.encode_usage(USAGE) == GEMINI_USAGE
    # OpenAI and Gemini have no cache writes: those tokens stay plain input.
    assert openai_chat.decode_usage(OPENAI_USAGE) == Usage(1000, 50, 600, 0, 20)
    assert gemini.decode_usage(GEMINI_USAGE) == Usage(1000, 50, 600, 0, 20)


def test_anthropic_cache_writes_count_in_openai_prompt_tokens() -> None:
    body = _anthropic("end_turn") | {"usage": ANTHROPIC_USAGE}
    usage = translate_response("openai-chat", "anthropic", body, model="m")["usage"]
    assert usage == OPENAI_USAGE


def test_gemini_tool_use_prompt_tokens_count_as_input() -> None:
    meta = {"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 2}
    body = _gemini("STOP") | {"usageMetadata": meta}
    usage = translate_response("anthropic", "gemini", body, model="m")["usage"]
    assert usage == {
        "input_tokens": 15,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 2,
    }


def test_missing_usage_stays_missing_where_the_dialect_allows() -> None:
    body = _anthropic("end_turn")
    assert "usage" not in translate_response("openai-chat", "anthropic", body, model="m")
    assert "usageMetadata" not in translate_response("gemini", "anthropic", body, model="m")
    zero = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    out = translate_response("anthropic", "gemini", _gemini("STOP"), model="m")
    assert out["usage"] == zero | {"output_tokens": 0}


def test_empty_answer_translates() -> None:
    response = Response(id="r", parts=[], stop=StopReason.LENGTH)
    body = CODECS["anthropic"].encode_response(response, model="m")
    assert body["content"] == []
    out = translate_response("openai-chat", "anthropic", body, model="m")
    assert out["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": None}
