"""Anthropic Messages (``POST /v1/messages``, ``/v1/messages/count_tokens``).

``usage.input_tokens`` excludes cache reads and writes. Streaming events:
message_start (input and cache counts, ``output_tokens: 1``),
[thinking block: content_block_start, ping, thinking_delta, signature_delta,
content_block_stop], text block: content_block_start, (ping), text_delta...,
content_block_stop, then message_delta with the cumulative final
``output_tokens`` and message_stop. Thinking tokens are counted inside
``output_tokens`` (and reported in ``output_tokens_details.thinking_tokens``,
as the 2026 SDK types show).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..billing import Tally
from ..planner import Reply, SimRequest
from ..prompt import Prompt, Segment
from ..tokens import canonical, part_tokens
from ..wire import anthropic_id, sse
from .base import BadRequest, Frame, StreamBreak, cumulative, model_name, require

THINKING_TEXT = "The user asked a question; answer briefly."


def _ttl(block: Any) -> str | None:
    control = block.get("cache_control") if isinstance(block, Mapping) else None
    if isinstance(control, Mapping) and control.get("type") == "ephemeral":
        return str(control.get("ttl") or "5m")
    return None


def _block_segment(block: Any, turn: int, role: str = "") -> Segment:
    return Segment(part_tokens(block), role + canonical(block), turn=turn, cache_ttl=_ttl(block))


def _blocks(content: Any, turn: int, role: str = "") -> list[Segment]:
    if isinstance(content, str):
        return [_block_segment(content, turn, role)] if content else []
    if isinstance(content, list):
        return [_block_segment(b, turn, role) for b in content]
    raise BadRequest("content: must be a string or a list of blocks")


def prompt_segments(body: Mapping[str, Any]) -> list[Segment]:
    """Tools, then system, then messages, block by block (Anthropic's cache order)."""
    messages = require(body, "messages", list)
    if not messages:
        raise BadRequest("messages: at least one message is required")
    segments = [_block_segment(tool, -1) for tool in body.get("tools") or []]
    segments += _blocks(body.get("system") or [], -1)
    for turn, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise BadRequest(f"messages.{turn}: must be an object")
        segments += _blocks(message.get("content"), turn, str(message.get("role", "")))
    if segments and _ttl(body):
        # Automatic caching: a top-level cache_control marks the last block.
        segments[-1] = replace(segments[-1], cache_ttl=_ttl(body))
    return segments


def count_tokens(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``count_tokens`` answer: all input tokens, as the real endpoint reports."""
    model_name(body.get("model"))
    return {"input_tokens": Prompt(prompt_segments(body)).tokens}


def _thinking(body: Mapping[str, Any]) -> tuple[bool | None, int | None]:
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping):
        return None, None
    budget = thinking.get("budget_tokens")
    enabled = thinking.get("type") in ("enabled", "adaptive")
    return enabled, budget if isinstance(budget, int) and enabled else None


def anthropic_usage(usage: Tally, output_tokens: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": usage.uncached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens - usage.cache_write_1h_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


class AnthropicMessages:
    name = "anthropic"
    error_style = "anthropic"
    explicit_cache = True

    def parse(self, body: Mapping[str, Any], hints: Mapping[str, str]) -> SimRequest:
        max_tokens = require(body, "max_tokens", int)
        enabled, budget = _thinking(body)
        return SimRequest(
            model=model_name(body.get("model")),
            stream=body.get("stream") is True,
            prompt=Prompt(prompt_segments(body)),
            max_output=max_tokens,
            reasoning=enabled,
            reasoning_budget=budget,
        )

    def stream_content_type(self, req: SimRequest) -> str:
        return "text/event-stream"

    def new_id(self) -> str:
        return anthropic_id()

    def body(self, reply: Reply) -> dict[str, Any]:
        content = [*_thinking_blocks(reply), {"type": "text", "text": reply.text}]
        return {
            **_message(reply, content),
            "stop_reason": _stop(reply),
            "usage": anthropic_usage(reply.usage, reply.usage.output_tokens),
        }

    def frames(self, reply: Reply) -> list[Frame]:
        start = _message(reply, []) | {"stop_reason": None}
        start["usage"] = anthropic_usage(reply.usage, 1)
        start["usage"].pop("output_tokens_details", None)  # must not exceed output_tokens
        frames = [_event({"type": "message_start", "message": start})]
        thinking = _thinking_blocks(reply)
        for index, block in enumerate(thinking):
            frames += _thinking_frames(index, block)
        frames += _text_frames(reply, index=len(thinking))
        final = anthropic_usage(reply.usage, reply.usage.output_tokens)
        final.pop("service_tier")
        final.pop("cache_creation")
        delta = {"stop_reason": _stop(reply), "stop_sequence": None}
        sent = reply.text_tokens
        frames.append(_event({"type": "message_delta", "delta": delta, "usage": final}, sent))
        frames.append(_event({"type": "message_stop"}, sent))
        return frames

    def error_frame(self, reply: Reply, at: StreamBreak) -> bytes:
        error = {"type": "overloaded_error", "message": "Overloaded"}
        return sse({"type": "error", "error": error}, event="error")


def _message(reply: Reply, content: list[Any]) -> dict[str, Any]:
    return {
        "id": reply.id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_sequence": None,
    }


def _stop(reply: Reply) -> str:
    return "max_tokens" if reply.truncated else "end_turn"


def _thinking_blocks(reply: Reply) -> list[dict[str, Any]]:
    if not reply.reasoning_tokens or reply.request.reasoning is not True:
        return []
    signature = base64.b64encode(secrets.token_bytes(48)).decode()
    return [{"type": "thinking", "thinking": THINKING_TEXT, "signature": signature}]


def _event(data: dict[str, Any], sent: int = 0) -> Frame:
    return Frame(sse(data, event=data["type"]), sent)


def _thinking_frames(index: int, block: dict[str, Any]) -> list[Frame]:
    empty = {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [
        {"type": "thinking_delta", "thinking": block["thinking"]},
        {"type": "signature_delta", "signature": block["signature"]},
    ]
    return [
        _event({"type": "content_block_start", "index": index, "content_block": empty}),
        _event({"type": "ping"}),
        *(_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas),
        _event({"type": "content_block_stop", "index": index}),
    ]


def _text_frames(reply: Reply, index: int) -> list[Frame]:
    empty = {"type": "text", "text": ""}
    frames = [_event({"type": "content_block_start", "index": index, "content_block": empty})]
    if index == 0:
        frames.append(_event({"type": "ping"}))
    for piece, sent in zip(reply.pieces, cumulative(reply.pieces), strict=True):
        delta = {"type": "text_delta", "text": piece}
        frames.append(_event({"type": "content_block_delta", "index": index, "delta": delta}, sent))
    frames.append(_event({"type": "content_block_stop", "index": index}, reply.text_tokens))
    return frames
