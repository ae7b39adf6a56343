"""The text of an answer, in any dialect, body or stream: what similarity compares.

Sans-io. Tool calls are compared as their JSON arguments, so two answers
that call the same tool the same way are alike.

>>> answer_text("anthropic", b'{"content": [{"type": "text", "text": "hi"}]}')
'hi'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tollhouse.metering.sse import SSEParser

RESPONSES_DELTAS = ("response.output_text.delta", "response.function_call_arguments.delta")


def answer_text(dialect: str, data: bytes) -> str:
    """Concatenated text (and tool-call arguments) of a JSON body or an SSE stream."""
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        try:
            return "".join(_body_text(dialect, json.loads(stripped)))
        except (ValueError, RecursionError):
            return ""
    return "".join(_stream_text(dialect, data))


def _stream_text(dialect: str, data: bytes) -> Iterator[str]:
    parser = SSEParser()
    for event in parser.feed(data) + parser.flush():
        try:
            chunk = json.loads(event.data)
        except (ValueError, RecursionError):
            continue  # [DONE]
        if isinstance(chunk, dict):
            yield from _chunk_text(dialect, chunk)


def _body_text(dialect: str, body: dict[str, Any]) -> Iterator[str]:
    if dialect == "openai-chat":
        for choice in _list(body.get("choices"))[:1]:
            message = choice.get("message") or {}
            yield from _strings(message.get("content"))
            for call in _list(message.get("tool_calls")):
                yield from _strings((call.get("function") or {}).get("arguments"))
    elif dialect == "anthropic":
        for block in _list(body.get("content")):
            yield from _strings(block.get("text"))
            if "input" in block:
                yield json.dumps(block["input"], sort_keys=True)
    elif dialect == "openai-responses":
        for item in _list(body.get("output")):
            for part in _list(item.get("content")):
                yield from _strings(part.get("text"))
            yield from _strings(item.get("arguments"))
    elif dialect == "gemini":
        yield from _gemini(body)


def _chunk_text(dialect: str, chunk: dict[str, Any]) -> Iterator[str]:
    if dialect == "openai-chat":
        for choice in _list(chunk.get("choices"))[:1]:
            delta = choice.get("delta") or {}
            yield from _strings(delta.get("content"))
            for call in _list(delta.get("tool_calls")):
                yield from _strings((call.get("function") or {}).get("arguments"))
    elif dialect == "anthropic":
        delta = chunk.get("delta")
        if chunk.get("type") == "content_block_delta" and isinstance(delta, dict):
            yield from _strings(delta.get("text") or delta.get("partial_json"))
    elif dialect == "openai-responses":
        if chunk.get("type") in RESPONSES_DELTAS:
            yield from _strings(chunk.get("delta"))
    elif dialect == "gemini":
        yield from _gemini(chunk)


def _gemini(body: dict[str, Any]) -> Iterator[str]:
    for candidate in _list(body.get("candidates"))[:1]:
        for part in _list((candidate.get("content") or {}).get("parts")):
            yield from _strings(part.get("text"))
            if "functionCall" in part:
                yield json.dumps(part["functionCall"], sort_keys=True)


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
