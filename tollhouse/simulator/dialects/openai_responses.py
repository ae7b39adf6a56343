"""OpenAI Responses (``POST /v1/responses``), also for xAI, OpenRouter, compat.

Streaming events, each with a ``sequence_number`` from 0: response.created,
response.in_progress, [reasoning item added/done], response.output_item.added,
response.content_part.added, response.output_text.delta..., response.output_text.done,
response.content_part.done, response.output_item.done, then response.completed
(or response.incomplete when ``max_output_tokens`` cut the answer), whose
``response.usage`` is the bill. An in-band failure is ``response.failed``
with the usage up to that point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..billing import Tally
from ..planner import Reply, SimRequest
from ..prompt import Prompt, Segment
from ..tokens import canonical, part_tokens
from ..wire import hex_id, sse
from .base import (
    BadRequest,
    Frame,
    StreamBreak,
    cumulative,
    head_segments,
    model_name,
    optional_int,
)

_ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}


def responses_usage(usage: Tally, extras: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": 0,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
        **extras,
    }


def _input_segments(value: Any) -> list[Segment]:
    if isinstance(value, str):
        return [Segment(part_tokens(value), canonical(value), turn=0)]
    if isinstance(value, list) and value:
        return [Segment(part_tokens(item), canonical(item), turn=i) for i, item in enumerate(value)]
    raise BadRequest("input: Field required")


def _reasoning(body: Mapping[str, Any]) -> bool | None:
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, Mapping) or "effort" not in reasoning:
        return None
    return bool(reasoning["effort"] != "none")


class OpenAIResponses:
    name = "openai-responses"
    error_style = "openai"
    explicit_cache = False

    def parse(self, body: Mapping[str, Any], hints: Mapping[str, str]) -> SimRequest:
        segments = head_segments(body.get("instructions"), *(body.get("tools") or []))
        segments += _input_segments(body.get("input"))
        echoed = {key: body.get(key, default) for key, default in _ECHOED.items()}
        echoed["reasoning"] = body.get("reasoning") or {"effort": None, "summary": None}
        return SimRequest(
            model=model_name(body.get("model")),
            stream=body.get("stream") is True,
            prompt=Prompt(segments),
            max_output=optional_int(body, "max_output_tokens"),
            reasoning=_reasoning(body),
            options=echoed,
        )

    def stream_content_type(self, req: SimRequest) -> str:
        return "text/event-stream"

    def new_id(self) -> str:
        return hex_id("resp_")

    def body(self, reply: Reply) -> dict[str, Any]:
        return _Render(reply).final()

    def frames(self, reply: Reply) -> list[Frame]:
        return _Render(reply).frames()

    def error_frame(self, reply: Reply, at: StreamBreak) -> bytes:
        response = _Render(reply).response("failed", [], None)
        response["usage"] = responses_usage(at.usage, reply.flavor.usage_fields(at.cost))
        response["error"] = {"code": "server_error", "message": "The model failed to respond."}
        event = {"type": "response.failed", "sequence_number": at.sent, "response": response}
        return sse(event, event="response.failed")


class _Render:
    """One response's objects and events, with stable item ids."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.message_id = hex_id("msg_")
        self.reasoning_id = hex_id("rs_") if reply.reasoning_tokens else None
        self.status = "incomplete" if reply.truncated else "completed"

    def response(self, status: str, output: list[Any], usage: Tally | None) -> dict[str, Any]:
        reply = self.reply
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": reply.id,
            "object": "response",
            "created_at": reply.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": incomplete,
            **reply.request.options,
            "model": reply.model,
            "output": output,
            "service_tier": "default",
            "usage": None if usage is None else responses_usage(usage, reply.usage_fields),
        }

    def reasoning_item(self) -> list[dict[str, Any]]:
        if self.reasoning_id is None:
            return []
        return [{"id": self.reasoning_id, "type": "reasoning", "summary": []}]

    def text_part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def message(self, status: str, content: list[Any]) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "content": content,
            "role": "assistant",
        }

    def output(self) -> list[dict[str, Any]]:
        message = self.message(self.status, [self.text_part(self.reply.text)])
        return [*self.reasoning_item(), message]

    def final(self) -> dict[str, Any]:
        return self.response(self.status, self.output(), self.reply.usage)

    def frames(self) -> list[Frame]:
        events = self._opening() + self._deltas() + self._closing()
        frames = []
        for seq, (event, sent) in enumerate(events):
            payload = {"type": event["type"], "sequence_number": seq, **event}
            frames.append(Frame(sse(payload, event=event["type"]), sent))
        return frames

    def _opening(self) -> list[tuple[dict[str, Any], int]]:
        pending = self.response("in_progress", [], None)
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": pending},
            {"type": "response.in_progress", "response": pending},
        ]
        for item in self.reasoning_item():
            events.append({"type": "response.output_item.added", "output_index": 0, "item": item})
            events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": self._index(),
                "item": self.message("in_progress", []),
            }
        )
        events.append(self._part_event("response.content_part.added", ""))
        return [(e, 0) for e in events]

    def _index(self) -> int:
        return len(self.reasoning_item())

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.message_id, "output_index": self._index(), "content_index": 0}

    def _part_event(self, kind: str, text: str) -> dict[str, Any]:
        return {"type": kind, **self._where(), "part": self.text_part(text)}

    def _deltas(self) -> list[tuple[dict[str, Any], int]]:
        pieces = self.reply.pieces
        return [
            ({"type": "response.output_text.delta", **self._where(), "delta": p, "logprobs": []}, n)
            for p, n in zip(pieces, cumulative(pieces), strict=True)
        ]

    def _closing(self) -> list[tuple[dict[str, Any], int]]:
        text = self.reply.text
        item = self.output()[-1]
        terminal = "response.incomplete" if self.reply.truncated else "response.completed"
        events = [
            {"type": "response.output_text.done", **self._where(), "text": text, "logprobs": []},
            self._part_event("response.content_part.done", text),
            {"type": "response.output_item.done", "output_index": self._index(), "item": item},
            {"type": terminal, "response": self.final()},
        ]
        return [(e, self.reply.text_tokens) for e in events]
