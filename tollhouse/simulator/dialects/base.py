"""The small interface every wire dialect implements, and shared helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from ..billing import Tally
from ..planner import Reply, SimRequest
from ..prompt import Segment
from ..tokens import canonical, part_tokens, text_tokens


class BadRequest(Exception):
    """A request the real provider would reject with 400."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One streamed chunk/event and the answer tokens sent up to and including it."""

    data: bytes
    text_tokens: int = 0


@dataclass(frozen=True, slots=True)
class StreamBreak:
    """Where a stream stopped early: frames already sent, and the usage at that point."""

    sent: int
    usage: Tally
    cost: Decimal | None


class Dialect(Protocol):
    """One wire format: parse a request, render a reply as a body or as frames."""

    name: str
    """The bill's ``dialect``: openai-chat, openai-responses, anthropic, gemini."""
    error_style: str
    explicit_cache: bool

    def parse(self, body: Mapping[str, Any], hints: Mapping[str, str]) -> SimRequest: ...

    def stream_content_type(self, req: SimRequest) -> str: ...

    def new_id(self) -> str: ...

    def body(self, reply: Reply) -> dict[str, Any]: ...

    def frames(self, reply: Reply) -> list[Frame]:
        """The whole stream; the last frame is the terminal one."""
        ...

    def error_frame(self, reply: Reply, at: StreamBreak) -> bytes:
        """An in-band error sent after ``at.sent`` frames (then the stream ends)."""
        ...


def require(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if not isinstance(value, kind):
        raise BadRequest(f"{key}: Field required")
    return value


def model_name(value: Any) -> str:
    """The request's model without Gemini's ``models/`` prefix."""
    if not isinstance(value, str) or not value:
        raise BadRequest("model: Field required")
    return value.removeprefix("models/")


def optional_int(body: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def message_segment(message: Any, turn: int, content_key: str = "content") -> Segment:
    """One whole message as a segment: its content plus any tool calls."""
    if not isinstance(message, Mapping):
        raise BadRequest(f"messages.{turn}: must be an object")
    tokens = part_tokens(message.get(content_key) or "")
    for extra in ("tool_calls", "function_call"):
        if message.get(extra):
            tokens += text_tokens(canonical(message[extra]))
    return Segment(tokens, canonical(message), turn=turn)


def head_segments(*parts: Any) -> list[Segment]:
    """System instructions and tool definitions, each its own head segment."""
    return [Segment(part_tokens(p), canonical(p), turn=-1) for p in parts if p]


def cumulative(pieces: tuple[str, ...]) -> list[int]:
    """Answer tokens sent after each piece (every answer token is 4 bytes)."""
    total, out = 0, []
    for piece in pieces:
        total += len(piece.encode()) // 4
        out.append(total)
    return out
