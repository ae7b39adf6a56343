"""Gemini ``models/{model}:generateContent`` and ``:streamGenerateContent``.

``usageMetadata.promptTokenCount`` includes ``cachedContentTokenCount``;
``thoughtsTokenCount`` is output billed apart from ``candidatesTokenCount``.
Streaming sends one chunk per answer piece, each with a running
``usageMetadata``, ``modelVersion`` and ``responseId``; the last adds
``finishReason``. With ``?alt=sse`` chunks are ``data: {...}\\r\\n\\r\\n``
events; without, the body is a JSON array streamed as ``[{...},\\r\\n{...}]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..billing import Tally
from ..planner import Reply, SimRequest
from ..prompt import Prompt, Segment
from ..tokens import canonical, part_tokens
from ..wire import dumps, gemini_response_id, sse
from .base import BadRequest, Frame, StreamBreak, cumulative, head_segments, model_name


def _get(body: Mapping[str, Any], camel: str, snake: str) -> Any:
    return body.get(camel, body.get(snake))


def _contents(body: Mapping[str, Any]) -> list[Segment]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("contents is not specified")
    segments = []
    for turn, content in enumerate(contents):
        if not isinstance(content, Mapping):
            raise BadRequest(f"contents[{turn}]: must be an object")
        tokens = part_tokens(content.get("parts") or [])
        segments.append(Segment(tokens, canonical(content), turn=turn))
    return segments


def _system_parts(body: Mapping[str, Any]) -> Any:
    system = _get(body, "systemInstruction", "system_instruction")
    return system.get("parts") if isinstance(system, Mapping) else system


def _thinking(config: Mapping[str, Any]) -> tuple[bool | None, int | None]:
    thinking = _get(config, "thinkingConfig", "thinking_config")
    if not isinstance(thinking, Mapping):
        return None, None
    budget = _get(thinking, "thinkingBudget", "thinking_budget")
    if isinstance(budget, int):
        return budget != 0, budget if budget > 0 else None
    level = _get(thinking, "thinkingLevel", "thinking_level")
    return (True, None) if level else (None, None)


def gemini_usage(usage: Tally, candidates: int) -> dict[str, Any]:
    thoughts = usage.reasoning_tokens
    meta: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": usage.input_tokens + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input_tokens}],
    }
    if usage.cached_input_tokens:
        meta["cachedContentTokenCount"] = usage.cached_input_tokens
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.cached_input_tokens}]
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


class GeminiGenerate:
    name = "gemini"
    error_style = "gemini"
    explicit_cache = False

    def parse(self, body: Mapping[str, Any], hints: Mapping[str, str]) -> SimRequest:
        config = _get(body, "generationConfig", "generation_config") or {}
        segments = head_segments(_system_parts(body), *(body.get("tools") or []))
        segments += _contents(body)
        max_output = _get(config, "maxOutputTokens", "max_output_tokens")
        reasoning, budget = _thinking(config)
        return SimRequest(
            model=model_name(hints.get("model")),
            stream=hints.get("method") == "streamGenerateContent",
            prompt=Prompt(segments),
            max_output=max_output if isinstance(max_output, int) else None,
            reasoning=reasoning,
            reasoning_budget=budget,
            options={"sse": hints.get("alt") == "sse"},
        )

    def stream_content_type(self, req: SimRequest) -> str:
        return "text/event-stream" if req.options.get("sse") else "application/json"

    def new_id(self) -> str:
        return gemini_response_id()

    def body(self, reply: Reply) -> dict[str, Any]:
        return _chunk(reply, reply.text, reply.text_tokens, final=True)

    def frames(self, reply: Reply) -> list[Frame]:
        sent = cumulative(reply.pieces)
        last = len(reply.pieces) - 1
        chunks = [
            _chunk(reply, piece, n, final=i == last)
            for i, (piece, n) in enumerate(zip(reply.pieces, sent, strict=True))
        ]
        if reply.request.options.get("sse"):
            return [Frame(sse(c, sep="\r\n"), n) for c, n in zip(chunks, sent, strict=True)]
        frames = [
            Frame(("[" if i == 0 else ",\r\n").encode() + dumps(c).encode(), n)
            for i, (c, n) in enumerate(zip(chunks, sent, strict=True))
        ]
        return [*frames, Frame(b"]", reply.text_tokens)]

    def error_frame(self, reply: Reply, at: StreamBreak) -> bytes:
        error = {
            "error": {
                "code": 503,
                "message": "The model is overloaded. Please try again later.",
                "status": "UNAVAILABLE",
            }
        }
        if reply.request.options.get("sse"):
            return sse(error, sep="\r\n")
        return ("[" if at.sent == 0 else ",\r\n").encode() + dumps(error).encode() + b"]"


def _chunk(reply: Reply, text: str, sent: int, *, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if final:
        candidate["finishReason"] = "MAX_TOKENS" if reply.truncated else "STOP"
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": gemini_usage(reply.usage, sent),
        "modelVersion": reply.model,
        "responseId": reply.id,
    }
