"""Anthropic Messages (``POST /v1/messages``) to and from the neutral model.

Wire facts this codec relies on:

* ``max_tokens`` is required (:data:`~tollhouse.translate.model.DEFAULT_MAX_TOKENS`
  when the client's dialect had none); ``system`` is top-level; turns
  alternate, so consecutive same-role messages are merged, and a user turn's
  ``tool_result`` blocks come before its other blocks;
* tool ids must match ``^[a-zA-Z0-9_-]+$``: foreign ids are sanitised the
  same way in ``tool_use`` and ``tool_result``, so they still pair up;
* ``temperature``, ``top_p`` and ``top_k`` go only to models that take them
  (:mod:`~tollhouse.translate.capabilities`: Claude Opus 4.7 and later answer
  400 to any of them; Claude 4.5 models to ``temperature`` with ``top_p``;
  none with thinking on but ``top_p``); ``seed`` and the penalties Anthropic
  has not. Whatever is not sent is named;
* reasoning is ``thinking: {"type": "adaptive"}`` plus
  ``output_config.effort`` where the model has them, else
  ``{"type": "enabled", "budget_tokens": N}``; ``{"type": "disabled"}`` for
  effort ``none`` and when the tool choice forces a tool (Anthropic refuses
  thinking then). Thinking text is not translated: a client asking to *see*
  it (``display: "summarized"``) cannot be served by another dialect;
* thinking across a fallback: Anthropic refuses a tool loop with thinking on
  whose last ``tool_use`` turn has no thinking block, and thinking blocks
  (signed, Anthropic-only) cannot be rebuilt from another provider's turn.
  So thinking is turned off for such a request, named; the same holds for a
  native Anthropic request whose tool turn came from a fallback
  (:func:`thinking_conflict`);
* a tool result keeps its parts (several text parts stay several text
  blocks) and its ``is_error`` flag;
* a trailing assistant message is a *prefill* to Anthropic (the model
  continues it); other dialects would answer it with a new turn, so it is
  not translated either way;
* ``usage.input_tokens`` excludes cache reads and writes; the neutral
  ``input_tokens`` includes them. A stream's ``message_delta`` usage is
  cumulative.
"""

from __future__ import annotations

import re
from typing import Any

from tollhouse.metering.sse import SSEEvent
from tollhouse.translate.capabilities import Capabilities, capabilities, nearest_effort
from tollhouse.translate.model import (
    DEFAULT_MAX_TOKENS,
    ChoiceMode,
    ErrorInfo,
    Media,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Request,
    Response,
    StopReason,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Untranslatable,
    Usage,
    as_dict,
    as_int,
    as_list,
    kind_for_status,
    merge_roles,
    midstream_error,
    opt_float,
    opt_int,
    reasoning_budget,
    reasoning_effort,
    sampling_knobs,
    stop_list,
    unsupported_media,
)
from tollhouse.translate.stream import (
    Done,
    Finish,
    SSEDecoder,
    Start,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ToolArgs,
    ToolEnd,
    ToolStart,
    UsageUpdate,
    dumps,
    load_event,
    malformed,
    sse,
)

NAME = "anthropic"
SYSTEM_JOIN = "\n\n"

_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_BAD_ID = re.compile(r"[^a-zA-Z0-9_-]")
_STOP_IN = {
    "end_turn": StopReason.END,
    "max_tokens": StopReason.LENGTH,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "tool_use": StopReason.TOOL_CALLS,
    "refusal": StopReason.REFUSAL,
    "model_context_window_exceeded": StopReason.LENGTH,
}
_STOP_OUT = {
    StopReason.LENGTH: "max_tokens",
    StopReason.STOP_SEQUENCE: "stop_sequence",
    StopReason.TOOL_CALLS: "tool_use",
    StopReason.CONTENT_FILTER: "refusal",
    StopReason.REFUSAL: "refusal",
}
_EFFORTS_OUT = {"minimal": "low"}
_MIN_BUDGET = 1024
_THINKING_TOP_P = 0.95  # the least top_p Anthropic takes with thinking on
_CHOICE_IN: dict[str, ChoiceMode] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}
_CHOICE_OUT = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}
_ERRORS_OUT = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "quota": "billing_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
    "api_error": "api_error",
}
_ERRORS_IN = {value: key for key, value in _ERRORS_OUT.items()}


class AnthropicCodec:
    name = NAME

    def decode_request(self, payload: dict[str, Any]) -> Request:
        return decode_request(payload)

    def encode_request(self, request: Request, *, model: str, stream: bool) -> dict[str, Any]:
        return encode_request(request, model=model, stream=stream)

    def decode_response(self, body: dict[str, Any]) -> Response:
        return decode_response(body)

    def encode_response(self, response: Response, *, model: str) -> dict[str, Any]:
        return encode_response(response, model=model)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def stream_encoder(self, *, model: str, include_usage: bool) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(model)

    def decode_error(self, status: int, body: Any) -> ErrorInfo | None:
        return decode_error(status, body)

    def encode_error(self, error: ErrorInfo) -> dict[str, Any]:
        return encode_error(error)

    def repair(self, payload: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        if not thinking_conflict(payload):
            return payload, ()
        repaired, note = without_thinking(payload)
        return repaired, (note,)


# --- requests: wire -> neutral


_READ = frozenset(
    [
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "metadata",
        "container",
        "mcp_servers",
        "service_tier",
    ]
)


def _refuse(payload: dict[str, Any]) -> None:
    for key in ("container", "mcp_servers"):
        if payload.get(key):
            raise Untranslatable(key)
    if as_dict(payload.get("thinking")).get("display") == "summarized":
        raise Untranslatable("visible thinking (thinking.display=summarized)")
    messages = as_list(payload.get("messages"))
    if messages and as_dict(messages[-1]).get("role") == "assistant":
        raise Untranslatable("an assistant prefill (a trailing assistant message)")


def _thinking_blocks(messages: list[Any]) -> bool:
    return any(
        as_dict(block).get("type") in ("thinking", "redacted_thinking")
        for message in messages
        for block in as_list(as_dict(message).get("content"))
    )


def decode_request(payload: dict[str, Any]) -> Request:
    _refuse(payload)
    choice, parallel = _decode_tool_choice(as_dict(payload.get("tool_choice")))
    config = as_dict(payload.get("output_config"))
    tools = [as_dict(tool) for tool in as_list(payload.get("tools"))]
    request = Request(
        messages=_decode_messages(as_list(payload.get("messages"))),
        system=_decode_system(payload.get("system")),
        tools=[_decode_tool(tool) for tool in tools],
        tool_choice=choice,
        parallel_tool_calls=parallel,
        max_tokens=opt_int(payload.get("max_tokens")),
        temperature=opt_float(payload.get("temperature")),
        top_p=opt_float(payload.get("top_p")),
        top_k=opt_int(payload.get("top_k")),
        stop=stop_list(payload.get("stop_sequences")),
        reasoning=_decode_reasoning(as_dict(payload.get("thinking")), config.get("effort")),
        output_format=_decode_format(as_dict(config.get("format"))),
        user=str(as_dict(payload.get("metadata")).get("user_id") or "") or None,
        strict_tools=any(tool.get("strict") is True for tool in tools),
    )
    for key in payload:
        if key not in _READ:
            request.omit(key)
    if _thinking_blocks(as_list(payload.get("messages"))):
        request.omit("earlier thinking blocks (only Anthropic can read them)")
    return request


def _decode_system(system: Any) -> str:
    if isinstance(system, str):
        return system
    texts = (str(as_dict(block).get("text") or "") for block in as_list(system))
    return SYSTEM_JOIN.join(text for text in texts if text)


def _decode_messages(raw: list[Any]) -> list[Message]:
    names: dict[str, str] = {}  # tool_use id -> tool name, to name the results
    messages = []
    for item in raw:
        message = as_dict(item)
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise Untranslatable(f"message role {role!r}")
        content = message.get("content")
        if isinstance(content, str):
            parts: list[Part] = [Text(content)] if content else []
        else:
            parts = [p for b in as_list(content) if (p := _decode_block(as_dict(b), names))]
        messages.append(Message(role, parts))
    return messages


def _decode_block(block: dict[str, Any], names: dict[str, str]) -> Part | None:
    kind = block.get("type")
    if kind == "text":
        return Text(block["text"]) if block.get("text") else None
    if kind in ("image", "document"):
        return _decode_source(as_dict(block.get("source")), kind)
    if kind == "tool_use":
        call_id, name = str(block.get("id") or ""), str(block.get("name") or "")
        names[call_id] = name
        return ToolCall(call_id, name, as_dict(block.get("input")))
    if kind == "tool_result":
        call_id = str(block.get("tool_use_id") or "")
        content = _decode_result_content(block.get("content"), names)
        return ToolResult(call_id, names.get(call_id, ""), content, block.get("is_error") is True)
    if kind in ("thinking", "redacted_thinking"):
        return None  # the model's own reasoning state; other dialects cannot take it back
    raise Untranslatable(f"{kind} content block")


def _decode_source(source: dict[str, Any], kind: str) -> Part:
    default = "image/*" if kind == "image" else "application/pdf"
    media_type = str(source.get("media_type") or default)
    if source.get("type") == "base64":
        return Media(media_type, str(source.get("data") or ""))
    if source.get("type") == "url":
        return Media(default, url=str(source.get("url") or ""))
    if source.get("type") == "text":
        return Text(str(source.get("data") or ""))
    raise Untranslatable(f"{kind} from a {source.get('type')} source")


def _decode_result_content(content: Any, names: dict[str, str]) -> tuple[Text | Media, ...]:
    if isinstance(content, str):
        return (Text(content),) if content else ()
    parts = (_decode_block(as_dict(block), names) for block in as_list(content))
    return tuple(p for p in parts if isinstance(p, Text | Media))


def _decode_tool(tool: dict[str, Any]) -> Tool:
    if tool.get("type") not in (None, "custom"):
        raise Untranslatable(f"server tool {tool.get('type')}")
    schema = as_dict(tool.get("input_schema")) or {"type": "object", "properties": {}}
    return Tool(str(tool.get("name") or ""), str(tool.get("description") or ""), schema)


def _decode_tool_choice(choice: dict[str, Any]) -> tuple[ToolChoice | None, bool | None]:
    parallel = False if choice.get("disable_parallel_tool_use") is True else None
    mode = _CHOICE_IN.get(str(choice.get("type")))
    if mode is None:
        return None, parallel
    return ToolChoice(mode, str(choice.get("name") or "")), parallel


def _decode_reasoning(thinking: dict[str, Any], effort: Any) -> Reasoning | None:
    effort = effort if isinstance(effort, str) else None
    kind = thinking.get("type")
    if kind == "disabled":
        return Reasoning(effort="none")
    if kind == "enabled":
        return Reasoning(effort=effort, budget=opt_int(thinking.get("budget_tokens")))
    if kind is not None or effort is not None:
        return Reasoning(effort=effort)
    return None


def _decode_format(fmt: dict[str, Any]) -> OutputFormat | None:
    if fmt.get("type") == "json_schema":  # always enforced: strict
        return OutputFormat(as_dict(fmt.get("schema")) or {"type": "object"}, strict=True)
    return None


# --- requests: neutral -> wire


def encode_request(request: Request, *, model: str, stream: bool) -> dict[str, Any]:
    caps = capabilities(NAME, model)
    thinks = _thinks(request, caps, model)
    body: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(request, thinks)}
    if request.system:
        body["system"] = request.system
    messages = merge_roles(request.messages)
    if messages and messages[-1].role == "assistant":
        raise Untranslatable(f"a trailing assistant message (a prefill to {NAME})")
    body["messages"] = [_encode_message(m) for m in messages]
    if request.tools:
        body["tools"] = [_encode_tool(tool, request.strict_tools) for tool in request.tools]
        if (choice := _encode_tool_choice(request)) is not None:
            body["tool_choice"] = choice
    if request.stop:
        body["stop_sequences"] = request.stop
    body.update(_sampling(request, caps, thinks, model))
    body.update(_encode_reasoning_and_format(request, caps, thinks, model))
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    return body


def _thinks(request: Request, caps: Capabilities, model: str) -> bool:
    """Whether to turn thinking on; Anthropic refuses it when a tool call is forced,
    and in a tool loop whose tool turn has no thinking block (one from another
    provider: its thinking cannot be rebuilt)."""
    if request.reasoning is None or reasoning_effort(request.reasoning) == "none":
        return False
    if caps.thinking == "none":
        request.omit(f"thinking ({model} does not think)")
        return False
    choice = request.tool_choice
    if request.tools and choice is not None and choice.mode in ("required", "tool"):
        request.omit(f"thinking ({NAME} refuses it when a tool call is forced)")
        return False
    if _open_tool_turn(request.messages):
        request.omit(f"thinking for this tool loop (its tool call was not made by {NAME})")
        return False
    limit = request.max_tokens
    if caps.thinking == "budget" and limit is not None and limit <= _MIN_BUDGET:
        request.omit(f"thinking (max_tokens {limit} leaves no room for a thinking budget)")
        return False
    return True


def _open_tool_turn(messages: list[Message]) -> bool:
    """The conversation ends with tool results answering an assistant's calls."""
    turns = [m for m in messages if m.parts]
    if len(turns) < 2 or not any(isinstance(p, ToolResult) for p in turns[-1].parts):
        return False
    return turns[-2].role == "assistant" and any(isinstance(p, ToolCall) for p in turns[-2].parts)


def thinking_conflict(payload: dict[str, Any]) -> bool:
    """A native request Anthropic would refuse: thinking on, and the tool turn being
    answered has no thinking block (a fallback made it). Turn thinking off for it."""
    if as_dict(payload.get("thinking")).get("type") not in ("enabled", "adaptive"):
        return False
    messages = [as_dict(m) for m in as_list(payload.get("messages"))]
    if len(messages) < 2 or messages[-2].get("role") != "assistant":
        return False
    blocks = [as_dict(b).get("type") for b in as_list(messages[-2].get("content"))]
    results = [as_dict(b).get("type") for b in as_list(messages[-1].get("content"))]
    thought = "thinking" in blocks or "redacted_thinking" in blocks
    return "tool_use" in blocks and "tool_result" in results and not thought


def without_thinking(payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``payload`` with thinking off, and the omission to name."""
    note = "thinking for this tool loop (its tool call was made by another provider)"
    return {**payload, "thinking": {"type": "disabled"}}, note


def _max_tokens(request: Request, thinks: bool) -> int:
    """The client's limit, else a default that leaves room for any thinking budget."""
    if request.max_tokens is not None:
        return request.max_tokens
    budget = reasoning_budget(request.reasoning) if request.reasoning and thinks else 0
    return DEFAULT_MAX_TOKENS + (budget or 0)


def _sampling(request: Request, caps: Capabilities, thinks: bool, model: str) -> dict[str, Any]:
    """The knobs ``model`` takes (the others named)."""
    out: dict[str, Any] = {}
    for knob, value in sampling_knobs(request).items():
        why = _refused(knob, value, caps, thinks, out)
        if why is None:
            out[knob] = value
        else:
            request.omit(f"{knob} ({model} does not take it{why})")
    return out


def _refused(
    knob: str, value: float, caps: Capabilities, thinks: bool, sent: dict[str, Any]
) -> str | None:
    """Why ``model`` would refuse this knob (a phrase to append), or None."""
    if knob not in caps.sampling:
        return ""
    if thinks and knob != "top_p":
        return " with thinking on"
    if thinks and value < _THINKING_TOP_P:
        return f" below {_THINKING_TOP_P} with thinking on"
    other = next((k for k in caps.exclusive if k in sent), None)
    if knob in caps.exclusive and other is not None:
        return f" together with {other}"
    return None


def _encode_reasoning_and_format(
    request: Request, caps: Capabilities, thinks: bool, model: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    config: dict[str, Any] = {}
    if request.reasoning is not None and caps.thinking != "none":
        effort = reasoning_effort(request.reasoning)
        out["thinking"] = _thinking(request.reasoning, caps, thinks, request.max_tokens)
        if effort is not None and effort != "none":
            sent = nearest_effort(_EFFORTS_OUT.get(effort, effort), caps.efforts)
            if not caps.efforts:
                if caps.thinking != "budget":
                    request.omit(f"reasoning effort ({model} has no effort setting)")
            elif sent != effort:
                request.omit(f"reasoning effort {effort} (sent as {sent}, the nearest it takes)")
                config["effort"] = sent
            else:
                config["effort"] = sent
    if request.output_format is not None:
        if request.output_format.schema is None:
            raise Untranslatable(f"JSON mode without a schema to {NAME} (it needs one)")
        config["format"] = {"type": "json_schema", "schema": request.output_format.schema}
    if config:
        out["output_config"] = config
    return out


def _thinking(
    reasoning: Reasoning, caps: Capabilities, thinks: bool, max_tokens: int | None
) -> dict[str, Any]:
    if not thinks:
        return {"type": "disabled"}
    if caps.thinking == "adaptive":
        return {"type": "adaptive"}
    budget = max(_MIN_BUDGET, reasoning_budget(reasoning) or _MIN_BUDGET)
    if max_tokens is not None:  # the budget must stay under max_tokens
        budget = max(_MIN_BUDGET, min(budget, max_tokens - 1))
    return {"type": "enabled", "budget_tokens": budget}


def tool_id(call_id: str) -> str:
    return _BAD_ID.sub("_", call_id) or "toolu_0"


def _encode_message(message: Message) -> dict[str, Any]:
    parts = message.parts
    if message.role == "user":  # tool results must lead the user turn
        parts = sorted(parts, key=lambda p: not isinstance(p, ToolResult))
    if len(parts) == 1 and isinstance(parts[0], Text):
        return {"role": message.role, "content": parts[0].text}
    return {"role": message.role, "content": [_encode_part(p) for p in parts]}


def _encode_part(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Media):
        return _encode_media(part)
    if isinstance(part, ToolCall):
        call_id = tool_id(part.id)
        return {"type": "tool_use", "id": call_id, "name": part.name, "input": part.arguments}
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(part.call_id)}
    if len(part.content) == 1 and isinstance(part.content[0], Text):
        block["content"] = part.content[0].text
    elif part.content:
        block["content"] = [_encode_part(p) for p in part.content]
    if part.is_error:
        block["is_error"] = True
    return block


def _encode_media(media: Media) -> dict[str, Any]:
    if media.media_type.startswith("image/") and media.url:
        return {"type": "image", "source": {"type": "url", "url": media.url}}
    if media.media_type in _IMAGE_TYPES:
        source = {"type": "base64", "media_type": media.media_type, "data": media.data}
        return {"type": "image", "source": source}
    if media.media_type == "application/pdf":
        if media.url:
            return {"type": "document", "source": {"type": "url", "url": media.url}}
        source = {"type": "base64", "media_type": media.media_type, "data": media.data}
        return {"type": "document", "source": source}
    raise unsupported_media(media, NAME)


def _encode_tool(tool: Tool, strict: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters
    if strict:
        out["strict"] = True
    return out


def _encode_tool_choice(request: Request) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is not False:
        return None
    out: dict[str, Any] = {"type": _CHOICE_OUT[choice.mode] if choice else "auto"}
    if choice is not None and choice.mode == "tool":
        out["name"] = choice.name
    if request.parallel_tool_calls is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# --- responses


def decode_usage(raw: Any) -> Usage | None:
    usage = as_dict(raw)
    if not usage:
        return None
    read = as_int(usage.get("cache_read_input_tokens"))
    written = as_int(usage.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=as_int(usage.get("input_tokens")) + read + written,
        output_tokens=as_int(usage.get("output_tokens")),
        cache_read_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=as_int(as_dict(usage.get("output_tokens_details")).get("thinking_tokens")),
    )


def encode_usage(usage: Usage) -> dict[str, Any]:
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    out: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - cached),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def decode_response(body: dict[str, Any]) -> Response:
    parts = [_decode_block(as_dict(b), {}) for b in as_list(body.get("content")) if _known(b)]
    stop_sequence = body.get("stop_sequence")
    return Response(
        id=str(body.get("id") or ""),
        parts=[p for p in parts if isinstance(p, Text | ToolCall)],
        stop=_STOP_IN.get(str(body.get("stop_reason")), StopReason.OTHER),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        usage=decode_usage(body.get("usage")),
    )


def _known(block: Any) -> bool:
    """Response blocks that translate (server-tool blocks were refused in the request)."""
    return as_dict(block).get("type") in ("text", "tool_use")


def encode_response(response: Response, *, model: str) -> dict[str, Any]:
    return {
        "id": response.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [_encode_part(p) for p in response.parts],
        "stop_reason": _STOP_OUT.get(response.stop, "end_turn"),
        "stop_sequence": response.stop_sequence,
        "usage": encode_usage(response.usage or Usage()),
    }


# --- errors


def decode_error(status: int, body: Any) -> ErrorInfo | None:
    error = as_dict(as_dict(body).get("error"))
    if not error:
        return None
    kind = _ERRORS_IN.get(str(error.get("type"))) or kind_for_status(status)
    return ErrorInfo(status, kind, str(error.get("message") or ""))


def encode_error(error: ErrorInfo) -> dict[str, Any]:
    kind = _ERRORS_OUT.get(error.kind, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


# --- streams


class AnthropicStreamDecoder(SSEDecoder):
    """Messages stream events to neutral events (thinking blocks are skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._usage: dict[str, Any] = {}

    def on_event(self, event: SSEEvent) -> list[StreamEvent]:
        data = load_event(event)
        if data is None:
            return [malformed(event)]
        kind = data.get("type")
        if kind == "message_start":
            message = as_dict(data.get("message"))
            self._usage = as_dict(message.get("usage"))
            return [Start(str(message.get("id") or "")), *self._usage_event()]
        if kind == "content_block_start":
            return self._block_start(as_int(data.get("index")), as_dict(data.get("content_block")))
        if kind == "content_block_delta":
            return self._block_delta(as_int(data.get("index")), as_dict(data.get("delta")))
        if kind == "content_block_stop" and (index := as_int(data.get("index"))) in self._tools:
            return [ToolEnd(self._tools[index])]
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            return [Done()]
        if kind == "error":
            return [StreamFailed(midstream_error(decode_error(0, data)))]
        return []

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        if block.get("type") == "text" and block.get("text"):
            return [TextDelta(str(block["text"]))]
        if block.get("type") != "tool_use":
            return []
        tool = self._tools[index] = len(self._tools)
        out: list[StreamEvent] = [ToolStart(tool, str(block.get("id")), str(block.get("name")))]
        if as_dict(block.get("input")):
            out.append(ToolArgs(tool, dumps(block["input"]).decode()))
        return out

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[StreamEvent]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [TextDelta(str(delta["text"]))]
        fragment = delta.get("partial_json")
        if delta.get("type") == "input_json_delta" and fragment and index in self._tools:
            return [ToolArgs(self._tools[index], str(fragment))]
        return []

    def _message_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        usage = as_dict(data.get("usage"))
        # Cumulative counts overwrite; fields the delta leaves out keep message_start's.
        self._usage = {**self._usage, **{k: v for k, v in usage.items() if v is not None}}
        delta = as_dict(data.get("delta"))
        out: list[StreamEvent] = []
        if reason := delta.get("stop_reason"):
            sequence = delta.get("stop_sequence")
            stop = _STOP_IN.get(str(reason), StopReason.OTHER)
            out.append(Finish(stop, sequence if isinstance(sequence, str) else None))
        return out + self._usage_event()

    def _usage_event(self) -> list[StreamEvent]:
        usage = decode_usage(self._usage)
        return [UsageUpdate(usage)] if usage is not None else []


class AnthropicStreamEncoder:
    """Neutral events to Messages stream events, ``message_start`` to ``message_stop``.

    ``message_start`` waits for the first content so it can carry the input
    usage when the upstream reported it that early (Gemini does; OpenAI only
    at the end, so then ``message_delta`` carries it, as the SDK expects).
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._started = False
        self._usage = Usage()
        self._finish: Finish | None = None
        self._blocks = 0
        self._open: int | None = None  # index of the open content block
        self._text_open = False
        self._tool_blocks: dict[int, int] = {}  # tool call index -> block index

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            self._id = event.id
        elif isinstance(event, UsageUpdate):
            self._usage = event.usage
        elif isinstance(event, Finish):
            self._finish = event
        elif isinstance(event, StreamFailed):
            return _event(encode_error(event.error))
        else:
            return self._start() + self._content(event)
        return b""

    def _content(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            delta = {"type": "text_delta", "text": event.text}
            return self._open_text() + self._delta(self._blocks - 1, delta)
        if isinstance(event, ToolStart):
            block = {"type": "tool_use", "id": tool_id(event.id), "name": event.name, "input": {}}
            self._tool_blocks[event.index] = self._blocks
            return self._open_block(block)
        if isinstance(event, ToolArgs) and event.index in self._tool_blocks:
            delta = {"type": "input_json_delta", "partial_json": event.fragment}
            return self._delta(self._tool_blocks[event.index], delta)
        if isinstance(event, ToolEnd):
            return self._close() if self._open == self._tool_blocks.get(event.index) else b""
        if isinstance(event, Done):
            return self._close() + self._end()
        return b""

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": encode_usage(self._usage),
        }
        return _event({"type": "message_start", "message": message})

    def _open_text(self) -> bytes:
        if self._text_open:
            return b""
        out = self._open_block({"type": "text", "text": ""})
        self._text_open = True
        return out

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._open = self._blocks
        self._blocks += 1
        start = {"type": "content_block_start", "index": self._open, "content_block": block}
        return out + _event(start)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._text_open = self._open, None, False
        return _event({"type": "content_block_stop", "index": index})

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _event({"type": "content_block_delta", "index": index, "delta": delta})

    def _end(self) -> bytes:
        finish = self._finish or Finish(StopReason.END)
        delta = {
            "stop_reason": _STOP_OUT.get(finish.stop, "end_turn"),
            "stop_sequence": finish.stop_sequence,
        }
        usage = encode_usage(self._usage)
        message_delta = {"type": "message_delta", "delta": delta, "usage": usage}
        return _event(message_delta) + _event({"type": "message_stop"})


def _event(data: dict[str, Any]) -> bytes:
    return sse(data, event=str(data["type"]))
