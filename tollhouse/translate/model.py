"""The neutral model every dialect codec converts to and from.

Each dialect (``openai_chat``, ``anthropic``, ``gemini``) decodes its wire
JSON into these types and encodes them back, so N codecs serve N x N
directions. The model holds only what all three can express, plus a few
knobs one side may drop (``top_k``, ``seed``...); anything a target cannot
serve raises :class:`Untranslatable` instead of being silently lost.

>>> req = Request(messages=[Message("user", [Text("Hi")])], system="Be brief.")
>>> req.messages[0].parts
[Text(text='Hi')]
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from tollhouse.errors import TollhouseError

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; used when the client's request had none."""

Role = Literal["user", "assistant"]


GENERATION_FAILED = "generation_failed"


class GenerationFailed(TollhouseError):
    """The upstream answered 200 but its generation failed (Gemini's
    ``MALFORMED_FUNCTION_CALL``, ``OTHER``...): a client of another dialect
    gets it as an error, never as a normal, empty answer.

    >>> GenerationFailed(ErrorInfo(502, "api_error", "x")).error.status
    502
    """

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


class Untranslatable(TollhouseError):
    """A request feature the target dialect cannot serve (``.reason`` says which).

    >>> Untranslatable("n>1").reason
    'n>1'
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Media:
    """An image, audio clip or document: inline base64 ``data`` or a ``url``.

    ``media_type`` is ``image/*`` when only a URL is known.
    """

    media_type: str
    data: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asking for a tool; ``arguments`` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The answer to a :class:`ToolCall`; ``name`` is the called tool's name."""

    call_id: str
    name: str
    content: tuple[Text | Media, ...]
    is_error: bool = False


Part = Text | Media | ToolCall | ToolResult


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    """A JSON Schema object."""


ChoiceMode = Literal["auto", "none", "required", "tool"]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ChoiceMode
    name: str = ""
    """The forced tool when ``mode == "tool"``."""


@dataclass(frozen=True, slots=True)
class Reasoning:
    """How hard to think: an ``effort`` level and/or a token ``budget``.

    Efforts: none, minimal, low, medium, high, xhigh, max. Reasoning text is
    never translated; only the knob is.
    """

    effort: str | None = None
    budget: int | None = None


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """Structured output: JSON, constrained by ``schema`` when one is given."""

    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = False


@dataclass(slots=True)
class Request:
    messages: list[Message]
    system: str = ""
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning: Reasoning | None = None
    output_format: OutputFormat | None = None
    user: str | None = None
    strict_tools: bool = False
    """The client asked for tool arguments that follow their schemas exactly."""
    omitted: list[str] = field(default_factory=list)
    """What translation left out, each named (listed in the module docs; sent to
    the client in ``X-Tollhouse-Translation-Omitted``). Decoders and encoders
    append to it."""

    def omit(self, what: str) -> None:
        if what not in self.omitted:
            self.omitted.append(what)


class StopReason(StrEnum):
    END = "end"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    STOP_SEQUENCE = "stop_sequence"
    CONTENT_FILTER = "content_filter"
    REFUSAL = "refusal"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts; ``input_tokens`` includes the cache, ``output_tokens`` reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Response:
    id: str
    parts: list[Text | ToolCall]
    stop: StopReason = StopReason.END
    stop_sequence: str | None = None
    usage: Usage | None = None
    created: int | None = None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An upstream error: its status, a neutral kind and the message.

    Kinds: invalid_request, authentication, permission, not_found,
    request_too_large, rate_limit, quota, overloaded, timeout, api_error,
    generation_failed (a 200 whose generation failed; rendered as api_error).
    """

    status: int
    kind: str
    message: str


_STATUS_KINDS = {
    400: "invalid_request",
    401: "authentication",
    402: "quota",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "request_too_large",
    429: "rate_limit",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}


_KIND_STATUSES = {
    "invalid_request": 400,
    "authentication": 401,
    "permission": 403,
    "not_found": 404,
    "request_too_large": 413,
    "rate_limit": 429,
    "quota": 429,
    "overloaded": 503,
    "timeout": 504,
}


def kind_for_status(status: int) -> str:
    return _STATUS_KINDS.get(status, "invalid_request" if 400 <= status < 500 else "api_error")


def midstream_error(error: ErrorInfo | None) -> ErrorInfo:
    """An error event inside a stream (its HTTP status was a 200): a status from its kind."""
    if error is None:
        return ErrorInfo(500, "api_error", "the upstream stream failed")
    return ErrorInfo(_KIND_STATUSES.get(error.kind, 500), error.kind, error.message)


_EFFORT_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
_MAX_BUDGET = 32768


def effort_budget(effort: str) -> int:
    """A thinking-token budget for an effort level (xhigh and max get the most)."""
    return _EFFORT_BUDGETS.get(effort, _MAX_BUDGET)


def budget_effort(budget: int) -> str:
    """The effort level closest to a thinking-token budget."""
    if budget <= 0:
        return "none"
    if budget <= _EFFORT_BUDGETS["low"]:
        return "low"
    if budget <= _EFFORT_BUDGETS["medium"]:
        return "medium"
    return "high" if budget <= _EFFORT_BUDGETS["high"] else "xhigh"


def reasoning_effort(reasoning: Reasoning) -> str | None:
    if reasoning.effort is not None:
        return reasoning.effort
    return None if reasoning.budget is None else budget_effort(reasoning.budget)


def reasoning_budget(reasoning: Reasoning) -> int | None:
    if reasoning.budget is not None:
        return reasoning.budget
    return None if reasoning.effort is None else effort_budget(reasoning.effort)


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments from a JSON string (or object) to a dict.

    Models occasionally emit broken JSON; it is kept under ``_raw`` rather than
    lost, so the caller still sees what the model said.
    """
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except (ValueError, RecursionError):
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def dump_arguments(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def parse_data_url(url: str) -> Media | None:
    """``data:image/png;base64,...`` as :class:`Media`; None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise Untranslatable("a data: URL that is not base64")
    return Media(head.partition(";")[0] or "application/octet-stream", data)


def data_url(media: Media) -> str:
    return f"data:{media.media_type};base64,{media.data}"


def require_inline(media: Media, target: str) -> None:
    """Targets that cannot fetch URLs need the bytes; tollhouse never fetches."""
    if media.url:
        raise Untranslatable(f"{_kind(media)} URL input ({target} needs inline data)")


def _kind(media: Media) -> str:
    return media.media_type.partition("/")[0] or "media"


def unsupported_media(media: Media, target: str) -> Untranslatable:
    return Untranslatable(f"{media.media_type} input to {target}")


def text_of(parts: Iterable[object]) -> str:
    return "".join(p.text for p in parts if isinstance(p, Text))


def sampling_knobs(request: Request) -> dict[str, Any]:
    """The sampling knobs the client set, by their neutral (OpenAI) names."""
    knobs = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    return {knob: value for knob, value in knobs.items() if value is not None}


RESULT_JOIN = "\n\n"


def join_result(parts: Iterable[object]) -> str:
    """A tool result's text parts as one string, a blank line between them
    (joined without one, ``Paris: 18C`` and ``Lyon: 21C`` would run together)."""
    return RESULT_JOIN.join(p.text for p in parts if isinstance(p, Text))


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def stop_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [s for s in as_list(value) if isinstance(s, str)]


def join_texts(parts: list[Text | ToolCall]) -> list[Text | ToolCall]:
    """Adjacent text parts as one (Gemini may split one answer over several)."""
    out: list[Text | ToolCall] = []
    for part in parts:
        if isinstance(part, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + part.text)
        else:
            out.append(part)
    return out


def merge_roles(messages: list[Message]) -> list[Message]:
    """Consecutive messages of one role as one, empty ones dropped (for targets
    that need alternating, non-empty turns)."""
    merged: list[Message] = []
    for message in messages:
        if not message.parts:
            continue
        if merged and merged[-1].role == message.role:
            merged[-1] = Message(message.role, [*merged[-1].parts, *message.parts])
        else:
            merged.append(Message(message.role, list(message.parts)))
    return merged
