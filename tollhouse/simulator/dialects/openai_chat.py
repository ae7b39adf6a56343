"""OpenAI Chat Completions (``POST /v1/chat/completions``), also for xAI, OpenRouter, compat.

Streaming: a role chunk, one chunk per answer piece, a ``finish_reason``
chunk, then (only with ``stream_options.include_usage``) a ``choices: []``
chunk carrying ``usage`` (the other chunks then carry ``"usage": null``),
then ``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..billing import Tally
from ..planner import Reply, SimRequest
from ..prompt import Prompt
from ..wire import chat_id, fingerprint, sse
from .base import (
    BadRequest,
    Frame,
    StreamBreak,
    cumulative,
    head_segments,
    message_segment,
    model_name,
    optional_int,
    require,
)


def chat_usage(usage: Tally, extras: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI ``usage``: prompt includes cached, completion includes reasoning."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
        **extras,
    }


def reasoning_switch(body: Mapping[str, Any]) -> tuple[bool | None, int | None]:
    """``reasoning_effort`` (OpenAI, xAI) or ``reasoning: {...}`` (OpenRouter)."""
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping):
        if reasoning.get("enabled") is False:
            return False, None
        effort = reasoning.get("effort", effort) or "medium"
        budget = reasoning.get("max_tokens")
        return effort != "none", budget if isinstance(budget, int) else None
    if isinstance(effort, str):
        return effort != "none", None
    return None, None


class OpenAIChat:
    name = "openai-chat"
    error_style = "openai"
    explicit_cache = False

    def parse(self, body: Mapping[str, Any], hints: Mapping[str, str]) -> SimRequest:
        messages = require(body, "messages", list)
        if not messages:
            raise BadRequest("messages: must contain at least one message")
        segments = head_segments(*(body.get("tools") or []))
        segments += [message_segment(m, i) for i, m in enumerate(messages)]
        stream = body.get("stream") is True
        options = body.get("stream_options")
        reasoning, budget = reasoning_switch(body)
        return SimRequest(
            model=model_name(body.get("model")),
            stream=stream,
            prompt=Prompt(segments),
            max_output=optional_int(body, "max_completion_tokens", "max_tokens"),
            reasoning=reasoning,
            reasoning_budget=budget,
            answers=max(1, min(128, optional_int(body, "n") or 1)),
            include_usage=stream
            and isinstance(options, Mapping)
            and options.get("include_usage") is True,
        )

    def stream_content_type(self, req: SimRequest) -> str:
        return "text/event-stream"

    def new_id(self) -> str:
        return chat_id()

    def body(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": _finish(reply)}
            for i in range(reply.request.answers)
        ]
        return {
            "id": reply.id,
            "object": "chat.completion",
            "created": reply.created,
            "model": reply.model,
            "choices": choices,
            "usage": chat_usage(reply.usage, reply.usage_fields),
            "service_tier": "default",
            "system_fingerprint": fingerprint(),
        }

    def frames(self, reply: Reply) -> list[Frame]:
        chunk = _Chunker(reply)
        first = {"role": "assistant", "content": "", "refusal": None}
        frames = [Frame(chunk.delta(first, None))]
        for piece, sent in zip(reply.pieces, cumulative(reply.pieces), strict=True):
            frames.append(Frame(chunk.delta({"content": piece}, None), sent))
        frames.append(Frame(chunk.delta({}, _finish(reply)), reply.text_tokens))
        if reply.request.include_usage:
            usage = chat_usage(reply.usage, reply.usage_fields)
            frames.append(Frame(chunk.encode([], usage), reply.text_tokens))
        frames.append(Frame(sse("[DONE]"), reply.text_tokens))
        return frames

    def error_frame(self, reply: Reply, at: StreamBreak) -> bytes:
        error = {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        return sse({"error": error})


def _finish(reply: Reply) -> str:
    return "length" if reply.truncated else "stop"


class _Chunker:
    """Builds ``chat.completion.chunk`` events sharing one id and fingerprint."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.fingerprint = fingerprint()

    def delta(self, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self.encode([choice], None)

    def encode(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        reply = self.reply
        chunk: dict[str, Any] = {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "service_tier": "default",
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        }
        if reply.request.include_usage:
            chunk["usage"] = usage
        return sse(chunk)
