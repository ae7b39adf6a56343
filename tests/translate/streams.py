"""The answer of :mod:`tests.translate.samples` as an upstream stream in each dialect,
and helpers to run a translator and read what it wrote."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tests.translate.samples import RESPONSES_RESPONSE
from tollhouse.translate import stream_translator


def sse(data: Any, event: str | None = None, newline: str = "\n") -> bytes:
    head = f"event: {event}{newline}" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}{newline}{newline}".encode()


def _openai_chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-5.5",
        "choices": choices,
        "usage": None,
    }
    return sse(chunk | extra)


def _openai_call(arguments: str, first: bool = False) -> dict[str, Any]:
    call: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
    if first:
        call |= {"id": "call_9", "type": "function"}
        call["function"]["name"] = "get_weather"
    return {"tool_calls": [call]}


OPENAI_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 10},
}

OPENAI_STREAM = b"".join(
    [
        _openai_chunk({"role": "assistant", "content": ""}),
        _openai_chunk({"content": "Check"}),
        _openai_chunk({"content": "ing."}),
        _openai_chunk(_openai_call("", first=True)),
        _openai_chunk(_openai_call('{"city":')),
        _openai_chunk(_openai_call('"Rome"}')),
        _openai_chunk({}, "tool_calls"),
        _openai_chunk(None, usage=OPENAI_USAGE),
        sse("[DONE]"),
    ]
)


def _anthropic(data: dict[str, Any]) -> bytes:
    return sse(data, event=data["type"])


def _block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return _anthropic({"type": "content_block_delta", "index": index, "delta": delta})


ANTHROPIC_STREAM = b"".join(
    [
        _anthropic(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-opus-4-8",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 20,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 100,
                        "output_tokens": 1,
                    },
                },
            }
        ),
        _anthropic(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        _anthropic({"type": "ping"}),
        _block_delta(0, {"type": "text_delta", "text": "Check"}),
        _block_delta(0, {"type": "text_delta", "text": "ing."}),
        _anthropic({"type": "content_block_stop", "index": 0}),
        _anthropic(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_9",
                    "name": "get_weather",
                    "input": {},
                },
            }
        ),
        _block_delta(1, {"type": "input_json_delta", "partial_json": '{"city":'}),
        _block_delta(1, {"type": "input_json_delta", "partial_json": '"Rome"}'}),
        _anthropic({"type": "content_block_stop", "index": 1}),
        _anthropic(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 30, "output_tokens_details": {"thinking_tokens": 10}},
            }
        ),
        _anthropic({"type": "message_stop"}),
    ]
)


def _gemini(parts: list[dict[str, Any]], candidates: int, finish: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage = {
        "promptTokenCount": 120,
        "candidatesTokenCount": candidates,
        "totalTokenCount": 130 + candidates,
        "cachedContentTokenCount": 100,
        "thoughtsTokenCount": 10,
    }
    chunk = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-pro",
        "responseId": "resp-1",
    }
    return sse(chunk, newline="\r\n")


GEMINI_CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
GEMINI_STREAM = b"".join(
    [
        _gemini([{"text": "Check"}], 1),
        _gemini([{"text": "ing."}], 2),
        _gemini([GEMINI_CALL], 20, "STOP"),
    ]
)


def _responses_events() -> list[dict[str, Any]]:
    """The sample answer as OpenAI streams it: reasoning, text, then a call."""
    final = RESPONSES_RESPONSE
    pending = final | {"status": "in_progress", "output": [], "usage": None}
    reasoning, message, call = final["output"]
    text = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    args = {"item_id": "fc_1", "output_index": 2}
    empty = {"type": "output_text", "text": "", "annotations": []}
    return [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
        {"type": "response.output_item.done", "output_index": 0, "item": reasoning},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": message | {"content": []},
        },
        {"type": "response.content_part.added", **text, "part": empty},
        {"type": "response.output_text.delta", **text, "delta": "Check"},
        {"type": "response.output_text.delta", **text, "delta": "ing."},
        {"type": "response.output_text.done", **text, "text": "Checking."},
        {"type": "response.content_part.done", **text, "part": message["content"][0]},
        {"type": "response.output_item.done", "output_index": 1, "item": message},
        {"type": "response.output_item.added", "output_index": 2, "item": call | {"arguments": ""}},
        {"type": "response.function_call_arguments.delta", **args, "delta": '{"city":'},
        {"type": "response.function_call_arguments.delta", **args, "delta": '"Rome"}'},
        {"type": "response.function_call_arguments.done", **args, "arguments": call["arguments"]},
        {"type": "response.output_item.done", "output_index": 2, "item": call},
        {"type": "response.completed", "response": final},
    ]


RESPONSES_STREAM = b"".join(
    sse(event | {"sequence_number": n}, event=event["type"])
    for n, event in enumerate(_responses_events())
)

STREAMS = {
    "openai-chat": OPENAI_STREAM,
    "openai-responses": RESPONSES_STREAM,
    "anthropic": ANTHROPIC_STREAM,
    "gemini": GEMINI_STREAM,
}
CLIENT_MODEL = "client-model"


def translate(
    source: str, target: str, chunks: Iterable[bytes], *, include_usage: bool = True
) -> bytes:
    """Feed ``chunks`` of a ``target`` stream; return the ``source`` stream written."""
    translator = stream_translator(source, target, model=CLIENT_MODEL, include_usage=include_usage)
    out = [translator.feed(chunk) for chunk in chunks]
    return b"".join(out) + translator.finish()


def events(body: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of each event in an SSE body; ``[DONE]`` stays a string."""
    out: list[tuple[str | None, Any]] = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        if not block:
            continue
        name, data = None, ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        out.append((name, data if data == "[DONE]" else json.loads(data)))
    return out


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def through(data: bytes, marker: bytes) -> bytes:
    """``data`` up to the end of the event that holds ``marker``."""
    found = _BLANK_LINE.search(data, data.index(marker))
    assert found is not None
    return data[: found.end()]
