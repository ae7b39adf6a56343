"""Streaming translation: exact event sequences, chunking, ends, errors, tool calls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.metering.chunking import chunkings
from tests.translate.conftest import NOW
from tests.translate.streams import (
    ANTHROPIC_STREAM,
    CLIENT_MODEL,
    GEMINI_STREAM,
    OPENAI_STREAM,
    STREAMS,
    events,
    sse,
    through,
    translate,
)
from tollhouse.translate import stream_translator
from tollhouse.translate.gemini import DUMMY_SIGNATURE

DIRECTIONS = [(s, t) for s in STREAMS for t in STREAMS if s != t]
CALL_IDS = {
    "openai-chat": "call_9",
    "openai-responses": "call_9",
    "anthropic": "toolu_9",
    "gemini": "call_0_resp-1",
}
RESPONSE_IDS = {
    "openai-chat": "chatcmpl-1",
    "openai-responses": "resp_1",
    "anthropic": "msg_1",
    "gemini": "resp-1",
}
# Gemini sends whole calls; the others stream argument fragments.
FRAGMENTS = {
    "openai-chat": ['{"city":', '"Rome"}'],
    "openai-responses": ['{"city":', '"Rome"}'],
    "anthropic": ['{"city":', '"Rome"}'],
    "gemini": ['{"city":"Rome"}'],
}


def openai_chunk(target: str, delta: Any, finish: str | None = None) -> tuple[None, Any]:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    chunk = {
        "id": RESPONSE_IDS[target],
        "object": "chat.completion.chunk",
        "created": NOW,
        "model": CLIENT_MODEL,
        "choices": choices,
        "usage": None,
    }
    return None, chunk


def expected_openai(target: str) -> list[tuple[str | None, Any]]:
    call = {
        "index": 0,
        "id": CALL_IDS[target],
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    fragments = [
        openai_chunk(target, {"tool_calls": [{"index": 0, "function": {"arguments": f}}]})
        for f in FRAGMENTS[target]
    ]
    usage = openai_chunk(target, None)
    usage[1]["usage"] = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 10},
    }
    return [
        openai_chunk(target, {"role": "assistant", "content": ""}),
        openai_chunk(target, {"content": "Check"}),
        openai_chunk(target, {"content": "ing."}),
        openai_chunk(target, {"tool_calls": [call]}),
        *fragments,
        openai_chunk(target, {}, "tool_calls"),
        usage,
        (None, "[DONE]"),
    ]


def anthropic_event(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return data["type"], data


def expected_anthropic(target: str) -> list[tuple[str | None, Any]]:
    # OpenAI reports usage only at the end; Gemini's first chunk already has it.
    start_usage = {
        "input_tokens": 20 if target == "gemini" else 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100 if target == "gemini" else 0,
        "output_tokens": 11 if target == "gemini" else 0,
    }
    if target == "gemini":
        start_usage["output_tokens_details"] = {"thinking_tokens": 10}
    message = {
        "id": RESPONSE_IDS[target],
        "type": "message",
        "role": "assistant",
        "model": CLIENT_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    tool = {"type": "tool_use", "id": CALL_IDS[target], "name": "get_weather", "input": {}}
    final_usage = {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
        "output_tokens": 30,
        "output_tokens_details": {"thinking_tokens": 10},
    }
    delta = {"stop_reason": "tool_use", "stop_sequence": None}
    return [
        anthropic_event({"type": "message_start", "message": message}),
        anthropic_event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        *(
            anthropic_event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": t},
                }
            )
            for t in ("Check", "ing.")
        ),
        anthropic_event({"type": "content_block_stop", "index": 0}),
        anthropic_event({"type": "content_block_start", "index": 1, "content_block": tool}),
        *(
            anthropic_event(
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": f},
                }
            )
            for f in FRAGMENTS[target]
        ),
        anthropic_event({"type": "content_block_stop", "index": 1}),
        anthropic_event({"type": "message_delta", "delta": delta, "usage": final_usage}),
        anthropic_event({"type": "message_stop"}),
    ]


def gemini_chunk(target: str, candidate: dict[str, Any], **extra: Any) -> tuple[None, Any]:
    chunk = {"candidates": [candidate | {"index": 0}], **extra}
    return None, chunk | {"modelVersion": CLIENT_MODEL, "responseId": RESPONSE_IDS[target]}


def expected_gemini(target: str) -> list[tuple[str | None, Any]]:
    def content(part: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"role": "model", "parts": [part]}}

    call = {
        "functionCall": {"id": CALL_IDS[target], "name": "get_weather", "args": {"city": "Rome"}},
        "thoughtSignature": DUMMY_SIGNATURE,  # Gemini 3 needs it back on the next turn
    }
    usage = {
        "promptTokenCount": 120,
        "candidatesTokenCount": 20,
        "totalTokenCount": 150,
        "cachedContentTokenCount": 100,
        "thoughtsTokenCount": 10,
    }
    return [
        gemini_chunk(target, content({"text": "Check"})),
        gemini_chunk(target, content({"text": "ing."})),
        gemini_chunk(target, content(call)),
        gemini_chunk(target, {"finishReason": "STOP"}, usageMetadata=usage),
    ]


def expected_responses(target: str) -> list[tuple[str | None, Any]]:
    rid = RESPONSE_IDS[target]
    rid = rid if rid.startswith("resp_") else f"resp_{rid}"
    msg, fc = f"msg_{rid[5:]}_0", f"fc_{rid[5:]}_1"
    text = {"item_id": msg, "output_index": 0, "content_index": 0}
    args = {"item_id": fc, "output_index": 1}
    arguments = "".join(FRAGMENTS[target])
    part = {"type": "output_text", "text": "Checking.", "annotations": []}
    message = {"id": msg, "type": "message", "status": "completed", "role": "assistant"}
    message["content"] = [part]
    call = {
        "id": fc,
        "type": "function_call",
        "status": "completed",
        "call_id": CALL_IDS[target],
        "name": "get_weather",
        "arguments": arguments,
    }

    def response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "response",
            "created_at": NOW,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": CLIENT_MODEL,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }

    usage = {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 10},
        "total_tokens": 150,
    }
    pending = response("in_progress", [], None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": message | {"status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **text, "part": part | {"text": ""}},
        {"type": "response.output_text.delta", **text, "delta": "Check", "logprobs": []},
        {"type": "response.output_text.delta", **text, "delta": "ing.", "logprobs": []},
        {"type": "response.output_text.done", **text, "text": "Checking.", "logprobs": []},
        {"type": "response.content_part.done", **text, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": call | {"status": "in_progress", "arguments": ""},
        },
        *(
            {"type": "response.function_call_arguments.delta", **args, "delta": f}
            for f in FRAGMENTS[target]
        ),
        {"type": "response.function_call_arguments.done", **args, "arguments": arguments},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.completed", "response": response("completed", [message, call], usage)},
    ]
    return [
        (e["type"], {"type": e["type"], "sequence_number": n, **e}) for n, e in enumerate(events)
    ]


EXPECTED = {
    "openai-chat": expected_openai,
    "openai-responses": expected_responses,
    "anthropic": expected_anthropic,
    "gemini": expected_gemini,
}


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_stream_translates_to_the_exact_event_sequence(source: str, target: str) -> None:
    assert events(translate(source, target, [STREAMS[target]])) == EXPECTED[source](target)


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_output_does_not_depend_on_upstream_chunking(source: str, target: str) -> None:
    data = STREAMS[target]
    whole = translate(source, target, [data])
    for chunks in chunkings(data, randoms=10):
        assert translate(source, target, chunks) == whole, [len(c) for c in chunks]


def test_wire_format_of_each_client_dialect() -> None:
    openai = translate("openai-chat", "anthropic", [ANTHROPIC_STREAM])
    assert openai.startswith(b'data: {"id":"msg_1","object":"chat.completion.chunk"')
    assert openai.endswith(b"\n\ndata: [DONE]\n\n")
    anthropic = translate("anthropic", "gemini", [GEMINI_STREAM])
    assert anthropic.startswith(b'event: message_start\ndata: {"type":"message_start"')
    assert anthropic.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    gemini = translate("gemini", "openai-chat", [OPENAI_STREAM])
    assert gemini.startswith(b'data: {"candidates":[{"content":{"role":"model"')
    assert gemini.endswith(b'"responseId":"chatcmpl-1"}\r\n\r\n')


@pytest.mark.parametrize("target", ["anthropic", "gemini"])
def test_openai_usage_chunk_only_when_the_client_asked(target: str) -> None:
    quiet = events(translate("openai-chat", target, [STREAMS[target]], include_usage=False))
    assert all("usage" not in data for _, data in quiet if isinstance(data, dict))
    assert [data["choices"][0]["finish_reason"] for _, data in quiet[-2:-1]] == ["tool_calls"]
    assert quiet[-1] == (None, "[DONE]")


@pytest.mark.parametrize("source", ["openai-chat", "anthropic"])
def test_gemini_stream_ends_cleanly_only_after_its_finish_reason(source: str) -> None:
    """Gemini has no end marker: a stream cut before ``finishReason`` stays open."""
    cut = translate(source, "gemini", [through(GEMINI_STREAM, b"ing.")])
    assert b"[DONE]" not in cut and b"message_stop" not in cut
    assert b"ing." in cut
    whole = translate(source, "gemini", [GEMINI_STREAM])
    assert whole.endswith((b"data: [DONE]\n\n", b'{"type":"message_stop"}\n\n'))


@pytest.mark.parametrize("target", ["openai-chat", "anthropic"])
def test_a_cut_stream_is_not_finished_for_the_client(target: str) -> None:
    data = STREAMS[target]
    cut = data[: len(data) // 2]
    out = events(translate("gemini", target, [cut]))
    assert out, "the content before the cut still goes out"
    assert all("finishReason" not in str(data) for _, data in out)


def test_openai_finish_without_done_still_ends_the_stream() -> None:
    data = OPENAI_STREAM[: OPENAI_STREAM.rindex(b"data: [DONE]")]
    out = events(translate("anthropic", "openai-chat", [data]))
    assert [name for name, _ in out[-2:]] == ["message_delta", "message_stop"]


def test_nothing_is_written_after_the_end() -> None:
    translator = stream_translator("anthropic", "openai-chat", model="m", include_usage=False)
    translator.feed(OPENAI_STREAM)
    assert translator.feed(OPENAI_STREAM) == b""
    assert translator.finish() == b""


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_same_dialect_streams_pass_through_byte_for_byte(dialect: str) -> None:
    translator = stream_translator(dialect, dialect, model="other", include_usage=False)
    assert translator.feed(STREAMS[dialect][:7]) == STREAMS[dialect][:7]
    assert translator.feed(STREAMS[dialect][7:]) == STREAMS[dialect][7:]
    assert translator.finish() == b""


# --- errors inside a stream

ANTHROPIC_ERROR = sse(
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, event="error"
)
OPENAI_ERROR = sse(
    {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
)
GEMINI_ERROR = sse(
    {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}, newline="\r\n"
)


@pytest.mark.parametrize(
    ("source", "target", "error", "expected"),
    [
        (
            "openai-chat",
            "anthropic",
            ANTHROPIC_ERROR,
            (
                None,
                {
                    "error": {
                        "message": "Overloaded",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
            ),
        ),
        (
            "gemini",
            "anthropic",
            ANTHROPIC_ERROR,
            (None, {"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}),
        ),
        (
            "anthropic",
            "openai-chat",
            OPENAI_ERROR,
            ("error", {"type": "error", "error": {"type": "api_error", "message": "boom"}}),
        ),
        (
            "anthropic",
            "gemini",
            GEMINI_ERROR,
            ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
        ),
    ],
)
def test_midstream_errors_reach_the_client_in_its_shape(
    source: str, target: str, error: bytes, expected: Any
) -> None:
    data = STREAMS[target]
    out = events(translate(source, target, [through(data, b"Check"), error, data]))
    assert out[-1] == expected
    assert sum(1 for _, d in out if d == expected[1]) == 1


def test_garbage_in_the_upstream_stream_becomes_an_error() -> None:
    out = events(translate("anthropic", "gemini", [b"data: {not json\r\n\r\n"]))
    assert out[-1][0] == "error"
    assert out[-1][1]["error"]["type"] == "api_error"


# --- tool calls


def test_anthropic_tool_without_arguments_gives_openai_an_empty_object() -> None:
    upstream = b"".join(
        [
            sse(
                {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 1}}},
                event="message_start",
            ),
            sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "t1", "name": "now", "input": {}},
                },
                event="content_block_start",
            ),
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": ""},
                },
                event="content_block_delta",
            ),
            sse({"type": "content_block_stop", "index": 0}, event="content_block_stop"),
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use"},
                    "usage": {"output_tokens": 3},
                },
                event="message_delta",
            ),
            sse({"type": "message_stop"}, event="message_stop"),
        ]
    )
    out = events(translate("openai-chat", "anthropic", [upstream], include_usage=False))
    calls = [d["choices"][0]["delta"].get("tool_calls") for _, d in out if isinstance(d, dict)]
    assert [c for c in calls if c] == [
        [
            {
                "index": 0,
                "id": "t1",
                "type": "function",
                "function": {"name": "now", "arguments": ""},
            }
        ],
        [{"index": 0, "function": {"arguments": "{}"}}],
    ]


def test_parallel_openai_calls_become_separate_anthropic_blocks_and_gemini_calls() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    upstream = b"".join(
        [
            chunk(call(0, id="a", type="function", function={"name": "f", "arguments": '{"x":'})),
            chunk(call(0, function={"arguments": "1}"})),
            chunk(call(1, id="b", type="function", function={"name": "g", "arguments": ""})),
            chunk(call(1, function={"arguments": '{"y":2}'})),
            chunk({}, "tool_calls"),
            sse("[DONE]"),
        ]
    )
    anthropic = events(translate("anthropic", "openai-chat", [upstream]))
    assert [
        (n, d.get("index"), d.get("content_block", d.get("delta"))) for n, d in anthropic[1:-2]
    ] == [
        ("content_block_start", 0, {"type": "tool_use", "id": "a", "name": "f", "input": {}}),
        ("content_block_delta", 0, {"type": "input_json_delta", "partial_json": '{"x":'}),
        ("content_block_delta", 0, {"type": "input_json_delta", "partial_json": "1}"}),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, {"type": "tool_use", "id": "b", "name": "g", "input": {}}),
        ("content_block_delta", 1, {"type": "input_json_delta", "partial_json": '{"y":2}'}),
        ("content_block_stop", 1, None),
    ]
    gemini = events(translate("gemini", "openai-chat", [upstream]))
    assert [d["candidates"][0].get("content") for _, d in gemini] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"id": "a", "name": "f", "args": {"x": 1}},
                    "thoughtSignature": DUMMY_SIGNATURE,
                }
            ],
        },
        {"role": "model", "parts": [{"functionCall": {"id": "b", "name": "g", "args": {"y": 2}}}]},
        None,
    ]


def test_gemini_parallel_calls_in_one_chunk_get_distinct_ids() -> None:
    calls = [{"functionCall": {"name": "f", "args": {"n": n}}} for n in (1, 2)]
    chunk = {
        "candidates": [{"content": {"role": "model", "parts": calls}, "finishReason": "STOP"}],
        "responseId": "r9",
    }
    out = events(translate("openai-chat", "gemini", [sse(chunk)], include_usage=False))
    starts = [
        d["choices"][0]["delta"]["tool_calls"][0]
        for _, d in out
        if isinstance(d, dict) and d["choices"] and "tool_calls" in d["choices"][0]["delta"]
    ]
    assert [(s["index"], s.get("id"), s["function"]["arguments"]) for s in starts] == [
        (0, "call_0_r9", ""),
        (0, None, '{"n":1}'),
        (1, "call_1_r9", ""),
        (1, None, '{"n":2}'),
    ]
    assert out[-2][1]["choices"][0]["finish_reason"] == "tool_calls"
