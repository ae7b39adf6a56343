"""OpenAI Responses (``POST /v1/responses``) to and from the neutral model.

Wire facts this codec relies on:

* ``input`` is a string (one user message) or a list of items: messages
  (``role`` user, assistant, system or developer; content a string or parts
  ``input_text``, ``input_image``, ``input_file``, ``output_text``,
  ``refusal``), ``function_call`` items (``call_id``, ``name``, JSON-string
  ``arguments``) and ``function_call_output`` items (``call_id``, ``output``
  a string or input parts); an item without ``type`` is a message;
* ``instructions`` and system/developer messages before the conversation
  are the neutral system prompt; one mid-conversation is not translated (as
  in chat);
* ``reasoning`` items in ``input`` are the model's earlier thinking, which
  only OpenAI can read: omitted, named (the model is still asked the same);
  ``reasoning.summary`` asks to *see* reasoning, which other dialects cannot
  show: omitted, named; ``reasoning.effort`` is the neutral effort;
* ``previous_response_id`` and ``conversation`` refer to state kept by
  OpenAI; tollhouse keeps none, so such a request is not translated (a
  fallback can't know the earlier turns);
* tools are flat (``{"type": "function", "name", "parameters"}``);
  ``tool_choice`` is ``auto|none|required`` or ``{"type": "function",
  "name"}``; structured output is ``text.format`` (``json_schema`` with
  ``name``, ``schema``, ``strict``; or ``json_object``);
* usage: ``input_tokens`` includes ``input_tokens_details.cached_tokens``;
  ``output_tokens`` includes ``output_tokens_details.reasoning_tokens``;
* a stream has no ``[DONE]``: it ends with ``response.completed`` (or
  ``response.incomplete``, ``response.failed``) carrying the whole response
  and its usage. Every event has a ``sequence_number`` counting from 0 and
  names the ``item_id`` and ``output_index`` it belongs to.
"""

from __future__ import annotations

from typing import Any

from tollhouse.metering.sse import SSEEvent
from tollhouse.translate.capabilities import capabilities, nearest_effort
from tollhouse.translate.model import (
    ChoiceMode,
    ErrorInfo,
    GenerationFailed,
    Media,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Request,
    Response,
    Role,
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
    data_url,
    dump_arguments,
    join_result,
    midstream_error,
    opt_float,
    opt_int,
    parse_arguments,
    parse_data_url,
    reasoning_effort,
    sampling_knobs,
    text_of,
    unsupported_media,
)
from tollhouse.translate.openai_chat import (
    ERROR_PREFIX,
    SYSTEM_JOIN,
    unix_time,
)
from tollhouse.translate.openai_chat import decode_error as chat_decode_error
from tollhouse.translate.openai_chat import encode_error as chat_encode_error
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
    load_event,
    malformed,
    sse,
)

NAME = "openai-responses"
CAPABILITIES_ROW = "openai-chat"  # the same models behind both OpenAI endpoints

_INCOMPLETE_IN = {
    "max_output_tokens": StopReason.LENGTH,
    "content_filter": StopReason.CONTENT_FILTER,
}


class OpenAIResponsesCodec:
    name = NAME

    def decode_request(self, payload: dict[str, Any]) -> Request:
        return decode_request(payload)

    def encode_request(self, request: Request, *, model: str, stream: bool) -> dict[str, Any]:
        return encode_request(request, model=model, stream=stream)

    def decode_response(self, body: dict[str, Any]) -> Response:
        return decode_response(body)

    def encode_response(self, response: Response, *, model: str) -> dict[str, Any]:
        return encode_response(response, model=model)

    def stream_decoder(self) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder()

    def stream_encoder(self, *, model: str, include_usage: bool) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(model)

    def decode_error(self, status: int, body: Any) -> ErrorInfo | None:
        return chat_decode_error(status, body)  # the same error object as chat

    def encode_error(self, error: ErrorInfo) -> dict[str, Any]:
        return chat_encode_error(error)

    def repair(self, payload: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        return payload, ()  # nothing a fallback's turn makes unacceptable


# --- requests: wire -> neutral


def _refuse(payload: dict[str, Any]) -> None:
    """Request features no other dialect can serve."""
    if payload.get("previous_response_id"):
        raise Untranslatable(
            "previous_response_id (the earlier turns are kept by OpenAI; "
            "tollhouse keeps no conversation state to send another provider)"
        )
    if payload.get("conversation"):
        raise Untranslatable("conversation (state kept by OpenAI)")
    if payload.get("background") is True:
        raise Untranslatable("background responses")
    if payload.get("top_logprobs") is not None:
        raise Untranslatable("logprobs")
    if payload.get("prompt"):
        raise Untranslatable("prompt templates (kept by OpenAI)")


_READ = frozenset(
    [
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "user",
        "safety_identifier",
        "stream",
        "previous_response_id",
        "conversation",
        "background",
        "top_logprobs",
        "prompt",
    ]
)
_HARMLESS = frozenset(
    [
        "store",
        "metadata",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "include",
        "truncation",
        "stream_options",
    ]
)


def decode_request(payload: dict[str, Any]) -> Request:
    _refuse(payload)
    reader = _InputReader()
    system, messages = reader.read(payload.get("input"))
    instructions = payload.get("instructions")
    if isinstance(instructions, str) and instructions:
        system = SYSTEM_JOIN.join(s for s in (instructions, system) if s)
    tools = _decode_tools(payload.get("tools"))
    choice, tools = _decode_tool_choice(payload.get("tool_choice"), tools)
    parallel = payload.get("parallel_tool_calls")
    request = Request(
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel if isinstance(parallel, bool) else None,
        max_tokens=opt_int(payload.get("max_output_tokens")),
        temperature=opt_float(payload.get("temperature")),
        top_p=opt_float(payload.get("top_p")),
        reasoning=_decode_reasoning(as_dict(payload.get("reasoning"))),
        output_format=_decode_format(as_dict(as_dict(payload.get("text")).get("format"))),
        user=_user(payload),
        strict_tools=any(as_dict(t).get("strict") is True for t in as_list(payload.get("tools"))),
    )
    for key in payload:
        if key not in _READ and key not in _HARMLESS:
            request.omit(key)
    if reader.reasoning_items:
        request.omit("earlier reasoning items (only OpenAI can read them)")
    if as_dict(payload.get("reasoning")).get("summary"):
        request.omit("reasoning.summary (reasoning is not shown across dialects)")
    if as_dict(payload.get("text")).get("verbosity") not in (None, "medium"):
        request.omit("text.verbosity")
    return request


def _user(payload: dict[str, Any]) -> str | None:
    for key in ("user", "safety_identifier"):
        if isinstance(value := payload.get(key), str) and value:
            return value
    return None


def _decode_reasoning(raw: dict[str, Any]) -> Reasoning | None:
    effort = raw.get("effort")
    return Reasoning(effort=effort) if isinstance(effort, str) else None


class _InputReader:
    """``input`` items to the system prompt and neutral messages."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.messages: list[Message] = []
        self.names: dict[str, str] = {}  # call_id -> tool name, to name the results
        self.reasoning_items = False

    def read(self, raw: Any) -> tuple[str, list[Message]]:
        if isinstance(raw, str):
            return "", [Message("user", [Text(raw)] if raw else [])]
        for item in as_list(raw):
            self._item(as_dict(item))
        return SYSTEM_JOIN.join(s for s in self.system if s), self.messages

    def _item(self, item: dict[str, Any]) -> None:
        kind = item.get("type", "message")
        if kind == "message":
            self._message(item)
        elif kind == "function_call":
            call_id, name = str(item.get("call_id") or ""), str(item.get("name") or "")
            self.names[call_id] = name
            self._add("assistant", ToolCall(call_id, name, parse_arguments(item.get("arguments"))))
        elif kind == "function_call_output":
            call_id = str(item.get("call_id") or "")
            content = _output_content(item.get("output"))
            self._add("user", ToolResult(call_id, self.names.get(call_id, ""), content))
        elif kind == "reasoning":
            self.reasoning_items = True
        elif kind == "item_reference":
            raise Untranslatable("item_reference (an item kept by OpenAI)")
        else:
            raise Untranslatable(f"{kind} input item")

    def _message(self, item: dict[str, Any]) -> None:
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            if self.messages:
                raise Untranslatable(f"a {role} message mid-conversation")
            self.system.append(_plain_text(content))
        elif role == "user":
            self.messages.append(Message("user", _decode_content(content)))
        elif role == "assistant":
            self.messages.append(Message("assistant", _decode_content(content)))
        else:
            raise Untranslatable(f"message role {role!r}")

    def _add(self, role: Role, part: ToolCall | ToolResult) -> None:
        """A call joins the assistant turn before it (its text, other calls); a
        result joins the results before it: one neutral turn each, as in chat."""
        last = self.messages[-1] if self.messages else None
        kind = ToolCall if role == "assistant" else ToolResult
        if (
            last is not None
            and last.role == role
            and all(isinstance(p, kind) or role == "assistant" for p in last.parts)
        ):
            last.parts.append(part)
        else:
            self.messages.append(Message(role, [part]))


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(as_dict(p).get("text") or "") for p in as_list(content))


def _decode_content(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)] if content else []
    return [part for item in as_list(content) if (part := _decode_part(as_dict(item)))]


def _decode_part(part: dict[str, Any]) -> Part | None:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        return Text(text) if isinstance(text, str) and text else None
    if kind == "refusal":
        text = part.get("refusal")
        return Text(text) if isinstance(text, str) and text else None
    if kind == "input_image":
        if part.get("file_id"):
            raise Untranslatable("image input by file_id (only inline or URL images translate)")
        url = str(part.get("image_url") or "")
        return parse_data_url(url) or Media("image/*", url=url)
    if kind == "input_file":
        media = parse_data_url(str(part.get("file_data") or ""))
        if media is None:
            raise Untranslatable("file input by file_id or URL (only inline file_data translates)")
        return media
    raise Untranslatable(f"{kind} content part")


def _output_content(output: Any) -> tuple[Text | Media, ...]:
    if isinstance(output, str):
        return (Text(output),) if output else ()
    parts = [_decode_part(as_dict(p)) for p in as_list(output)]
    return tuple(p for p in parts if isinstance(p, Text | Media))


def _decode_tools(raw: Any) -> list[Tool]:
    tools = []
    for item in as_list(raw):
        tool = as_dict(item)
        if tool.get("type", "function") != "function":
            raise Untranslatable(f"{tool.get('type')} tools")
        parameters = as_dict(tool.get("parameters")) or {"type": "object", "properties": {}}
        description = str(tool.get("description") or "")
        tools.append(Tool(str(tool.get("name") or ""), description, parameters))
    return tools


def _decode_tool_choice(raw: Any, tools: list[Tool]) -> tuple[ToolChoice | None, list[Tool]]:
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw), tools
    choice = as_dict(raw)
    if choice.get("type") == "function":
        return ToolChoice("tool", str(choice.get("name") or "")), tools
    if choice.get("type") == "allowed_tools":
        names = {as_dict(t).get("name") for t in as_list(choice.get("tools"))}
        mode: ChoiceMode = "required" if choice.get("mode") == "required" else "auto"
        return ToolChoice(mode), [t for t in tools if t.name in names]
    if choice:
        raise Untranslatable(f"tool_choice {choice.get('type')}")
    return None, tools


def _decode_format(fmt: dict[str, Any]) -> OutputFormat | None:
    if fmt.get("type") == "json_object":
        return OutputFormat()
    if fmt.get("type") == "json_schema":
        name = str(fmt.get("name") or "response")
        schema = as_dict(fmt.get("schema")) or {"type": "object"}
        return OutputFormat(schema, name, fmt.get("strict") is True)
    return None


# --- requests: neutral -> wire


def encode_request(request: Request, *, model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model}
    if request.system:
        body["instructions"] = request.system
    body["input"] = _encode_input(request)
    if request.tools:
        body["tools"] = [_encode_tool(tool, request.strict_tools) for tool in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _encode_tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    body.update(_sampling(request, model))
    if request.output_format is not None:
        body["text"] = {"format": _encode_format(request.output_format)}
    if request.user:
        body["user"] = request.user
    body["store"] = False  # tollhouse keeps no conversation state; neither should OpenAI
    if stream:
        body["stream"] = True
    return body


def _sampling(request: Request, model: str) -> dict[str, Any]:
    caps = capabilities(CAPABILITIES_ROW, model)
    fields: dict[str, Any] = {"max_output_tokens": request.max_tokens}
    if request.stop:  # they change where the answer ends: not an omission
        raise Untranslatable(f"stop sequences ({NAME} has none)")
    effort = _effort(request, caps.efforts, model)
    if effort is not None:
        fields["reasoning"] = {"effort": effort}
    for knob, value in sampling_knobs(request).items():
        if knob in caps.sampling and knob in ("temperature", "top_p"):
            fields[knob] = value
        else:
            request.omit(f"{knob} ({model} does not take it)")
    return {key: value for key, value in fields.items() if value is not None}


def _effort(request: Request, accepted: tuple[str, ...], model: str) -> str | None:
    effort = reasoning_effort(request.reasoning) if request.reasoning else None
    if effort is None:
        return None
    if not accepted:
        if effort != "none":
            request.omit(f"reasoning.effort ({model} does not reason)")
        return None
    sent = nearest_effort(effort, accepted)
    if sent != effort:
        request.omit(f"reasoning.effort {effort} (sent as {sent}, the nearest {model} takes)")
    return sent


def _encode_input(request: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "assistant":
            out += _encode_assistant(message)
        else:
            out += _encode_user(message)
    return out


def _encode_user(message: Message) -> list[dict[str, Any]]:
    results = [p for p in message.parts if isinstance(p, ToolResult)]
    out = [_encode_result(result) for result in results]
    rest = [p for p in message.parts if not isinstance(p, ToolResult)]
    if rest:
        content = [_encode_user_part(p) for p in rest]
        out.append({"role": "user", "content": content})
    return out


def _encode_user_part(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, Media):
        return _encode_media(part)
    raise Untranslatable(f"a {type(part).__name__} in a user message to {NAME}")


def _encode_media(media: Media) -> dict[str, Any]:
    if media.media_type.startswith("image/"):
        return {"type": "input_image", "image_url": media.url or data_url(media), "detail": "auto"}
    if media.media_type == "application/pdf" and not media.url:
        return {"type": "input_file", "filename": "document.pdf", "file_data": data_url(media)}
    raise unsupported_media(media, NAME)


def _encode_result(result: ToolResult) -> dict[str, Any]:
    if any(isinstance(p, Media) for p in result.content):
        raise Untranslatable(f"media in a tool result to {NAME}")
    text = join_result(result.content)
    if result.is_error:
        text = ERROR_PREFIX + text
    return {"type": "function_call_output", "call_id": result.call_id, "output": text}


def _encode_assistant(message: Message) -> list[dict[str, Any]]:
    if any(isinstance(p, Media | ToolResult) for p in message.parts):
        raise Untranslatable(f"media in an assistant message to {NAME}")
    out: list[dict[str, Any]] = []
    text = text_of(message.parts)
    if text:
        content = [{"type": "output_text", "text": text}]
        out.append({"role": "assistant", "content": content})
    out += [_encode_call(p) for p in message.parts if isinstance(p, ToolCall)]
    return out


def _encode_call(call: ToolCall) -> dict[str, Any]:
    arguments = dump_arguments(call.arguments)
    return {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": arguments}


def _encode_tool(tool: Tool, strict: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["parameters"] = tool.parameters
    out["strict"] = strict  # Responses defaults to strict: say what the client asked
    return out


def _encode_tool_choice(choice: ToolChoice) -> Any:
    if choice.mode == "tool":
        return {"type": "function", "name": choice.name}
    return choice.mode


def _encode_format(fmt: OutputFormat) -> dict[str, Any]:
    if fmt.schema is None:
        return {"type": "json_object"}
    out: dict[str, Any] = {"type": "json_schema", "name": fmt.name, "schema": fmt.schema}
    if fmt.strict:
        out["strict"] = True
    return out


# --- responses


def decode_usage(raw: Any) -> Usage | None:
    usage = as_dict(raw)
    if not usage:
        return None
    return Usage(
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
        cache_read_tokens=as_int(as_dict(usage.get("input_tokens_details")).get("cached_tokens")),
        reasoning_tokens=as_int(
            as_dict(usage.get("output_tokens_details")).get("reasoning_tokens")
        ),
    )


def encode_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _decode_output(output: Any) -> tuple[list[Text | ToolCall], bool]:
    """The output items' text and calls (reasoning items skipped), and whether refused."""
    parts: list[Text | ToolCall] = []
    refused = False
    for raw in as_list(output):
        item = as_dict(raw)
        if item.get("type") == "message":
            for part in map(as_dict, as_list(item.get("content"))):
                refused |= part.get("type") == "refusal"
                text = (
                    part.get("text") if part.get("type") == "output_text" else part.get("refusal")
                )
                if isinstance(text, str) and text:
                    parts.append(Text(text))
        elif item.get("type") == "function_call":
            call_id, name = str(item.get("call_id") or ""), str(item.get("name") or "")
            parts.append(ToolCall(call_id, name, parse_arguments(item.get("arguments"))))
    return parts, refused


def _stop(body: dict[str, Any], parts: list[Text | ToolCall], refused: bool) -> StopReason:
    if refused:
        return StopReason.REFUSAL
    if body.get("status") == "incomplete":
        reason = str(as_dict(body.get("incomplete_details")).get("reason"))
        return _INCOMPLETE_IN.get(reason, StopReason.OTHER)
    if any(isinstance(p, ToolCall) for p in parts):
        return StopReason.TOOL_CALLS
    return StopReason.END


def decode_response(body: dict[str, Any]) -> Response:
    if body.get("status") == "failed":
        error = as_dict(body.get("error"))
        raise GenerationFailed(ErrorInfo(502, "api_error", str(error.get("message") or "failed")))
    parts, refused = _decode_output(body.get("output"))
    created = body.get("created_at")
    return Response(
        id=str(body.get("id") or ""),
        parts=parts,
        stop=_stop(body, parts, refused),
        usage=decode_usage(body.get("usage")),
        created=created if isinstance(created, int) else None,
    )


def _response_id(source: str) -> str:
    """A Responses id for an answer another dialect gave (its own id, prefixed)."""
    return source if source.startswith("resp_") else f"resp_{source}"


def _status(stop: StopReason) -> tuple[str, dict[str, Any] | None]:
    if stop == StopReason.LENGTH:
        return "incomplete", {"reason": "max_output_tokens"}
    if stop == StopReason.CONTENT_FILTER:
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _response_object(
    rid: str, model: str, created: int, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": None,
    }


def _message_item(item_id: str, text: str, status: str, refused: bool) -> dict[str, Any]:
    part: dict[str, Any] = (
        {"type": "refusal", "refusal": text}
        if refused
        else {"type": "output_text", "text": text, "annotations": []}
    )
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def _call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def encode_response(response: Response, *, model: str) -> dict[str, Any]:
    rid = _response_id(response.id)
    output: list[dict[str, Any]] = []
    text = text_of(response.parts)
    refused = response.stop == StopReason.REFUSAL
    if text:
        output.append(_message_item(f"msg_{rid[5:]}", text, "completed", refused))
    for n, call in enumerate(p for p in response.parts if isinstance(p, ToolCall)):
        arguments = dump_arguments(call.arguments)
        output.append(_call_item(f"fc_{rid[5:]}_{n}", call.id, call.name, arguments, "completed"))
    status, incomplete = _status(response.stop)
    created = response.created if response.created is not None else unix_time()
    body = _response_object(rid, model, created, status, output)
    body["incomplete_details"] = incomplete
    if response.usage is not None:
        body["usage"] = encode_usage(response.usage)
    return body


# --- errors: the same ``{"error": {...}}`` object as chat (see the codec class)


# --- streams


class ResponsesStreamDecoder(SSEDecoder):
    """Responses events to neutral events (reasoning items are skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self._started = False
        self._calls: dict[str, int] = {}  # item id -> tool index
        self._argued: set[int] = set()
        self._refused = False

    def on_event(self, event: SSEEvent) -> list[StreamEvent]:
        data = load_event(event)
        if data is None:
            return [malformed(event)]
        kind = str(data.get("type") or event.event or "")
        out: list[StreamEvent] = []
        if not self._started and kind.startswith("response."):
            self._started = True
            out.append(Start(str(as_dict(data.get("response")).get("id") or "")))
        return out + self._event(kind, data)

    def _event(self, kind: str, data: dict[str, Any]) -> list[StreamEvent]:
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            self._refused |= kind == "response.refusal.delta"
            delta = data.get("delta")
            return [TextDelta(delta)] if isinstance(delta, str) and delta else []
        if kind == "response.output_item.added":
            return self._item_added(as_dict(data.get("item")))
        if kind == "response.function_call_arguments.delta":
            return self._args(str(data.get("item_id") or ""), data.get("delta"))
        if kind == "response.output_item.done":
            return self._item_done(as_dict(data.get("item")))
        if kind in ("response.completed", "response.incomplete"):
            return self._end(as_dict(data.get("response")))
        if kind in ("response.failed", "error"):
            return [StreamFailed(midstream_error(_stream_error(data)))]
        return []

    def _item_added(self, item: dict[str, Any]) -> list[StreamEvent]:
        if item.get("type") != "function_call":
            return []
        index = len(self._calls)
        self._calls[str(item.get("id") or "")] = index
        start = ToolStart(index, str(item.get("call_id") or ""), str(item.get("name") or ""))
        return [start, *self._args(str(item.get("id") or ""), item.get("arguments"))]

    def _args(self, item_id: str, fragment: Any) -> list[StreamEvent]:
        index = self._calls.get(item_id)
        if index is None or not isinstance(fragment, str) or not fragment:
            return []
        self._argued.add(index)
        return [ToolArgs(index, fragment)]

    def _item_done(self, item: dict[str, Any]) -> list[StreamEvent]:
        index = self._calls.get(str(item.get("id") or ""))
        if index is None:
            return []
        out: list[StreamEvent] = []
        if index not in self._argued:  # arguments only in the done item
            out += self._args(str(item.get("id") or ""), item.get("arguments"))
        return [*out, ToolEnd(index)]

    def _end(self, response: dict[str, Any]) -> list[StreamEvent]:
        parts, refused = _decode_output(response.get("output"))
        stop = _stop(response, parts, refused or self._refused)
        if stop == StopReason.END and self._calls:
            stop = StopReason.TOOL_CALLS
        out: list[StreamEvent] = []
        if (usage := decode_usage(response.get("usage"))) is not None:
            out.append(UsageUpdate(usage))
        return [*out, Finish(stop), Done()]


def _stream_error(data: dict[str, Any]) -> ErrorInfo | None:
    error = as_dict(as_dict(data.get("response")).get("error")) or data
    return chat_decode_error(0, {"error": error})


class ResponsesStreamEncoder:
    """Neutral events to the Responses event sequence, each numbered from 0.

    Text goes in one message item, each tool call in a function_call item, in
    the order they came; ``response.completed`` at the end carries every item
    and the usage.
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._created = unix_time()
        self._seq = 0
        self._started = False
        self._output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._text = ""
        self._calls: dict[int, int] = {}  # tool index -> output index
        self._finish: Finish | None = None
        self._usage: Usage | None = None

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            self._id = _response_id(event.id)
            return self._start()
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return b""
        if isinstance(event, Finish):
            self._finish = event
            return b""
        if isinstance(event, StreamFailed):
            return self._start() + self._failed(event.error)
        return self._start() + self._content(event)

    def _content(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._text_delta(event.text)
        if isinstance(event, ToolStart):
            return self._close() + self._tool_start(event)
        if isinstance(event, ToolArgs):
            return self._tool_args(event)
        if isinstance(event, ToolEnd):
            return self._close()
        if isinstance(event, Done):
            return self._close() + self._completed()
        return b""

    def _emit(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return sse(data, event=kind)

    def _response(self, status: str) -> dict[str, Any]:
        rid = self._id or "resp_tollhouse"
        return _response_object(rid, self._model, self._created, status, list(self._output))

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        pending = self._response("in_progress")
        return self._emit("response.created", response=pending) + self._emit(
            "response.in_progress", response=pending
        )

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open["type"] != "message":
            out += self._close() + self._open_message()
        self._text += text
        where = self._where(content=True)
        return out + self._emit("response.output_text.delta", **where, delta=text, logprobs=[])

    def _open_message(self) -> bytes:
        item_id = f"msg_{self._id[5:]}_{len(self._output)}"
        self._open = _message_item(item_id, "", "in_progress", False)
        self._text = ""
        index = len(self._output)
        part = {"type": "output_text", "text": "", "annotations": []}
        added = self._emit("response.output_item.added", output_index=index, item=self._open)
        where = self._where(content=True)
        return added + self._emit("response.content_part.added", **where, part=part)

    def _tool_start(self, event: ToolStart) -> bytes:
        item_id = f"fc_{self._id[5:]}_{len(self._output)}"
        self._open = _call_item(item_id, event.id, event.name, "", "in_progress")
        self._calls[event.index] = len(self._output)
        index = len(self._output)
        return self._emit("response.output_item.added", output_index=index, item=dict(self._open))

    def _tool_args(self, event: ToolArgs) -> bytes:
        item = self._open
        if item is None or item["type"] != "function_call":
            return b""
        item["arguments"] += event.fragment
        where = self._where(content=False)
        return self._emit("response.function_call_arguments.delta", **where, delta=event.fragment)

    def _where(self, *, content: bool) -> dict[str, Any]:
        assert self._open is not None
        where: dict[str, Any] = {"item_id": self._open["id"], "output_index": len(self._output)}
        if content:
            where["content_index"] = 0
        return where

    def _close(self) -> bytes:
        item = self._open
        if item is None:
            return b""
        out = self._close_message() if item["type"] == "message" else self._close_call()
        self._output.append(self._open_done())
        self._open = None
        return out

    def _open_done(self) -> dict[str, Any]:
        item = dict(self._open or {})
        item["status"] = "completed"
        if item["type"] == "message":
            item["content"] = [{"type": "output_text", "text": self._text, "annotations": []}]
        return item

    def _close_message(self) -> bytes:
        where = self._where(content=True)
        part = {"type": "output_text", "text": self._text, "annotations": []}
        out = self._emit("response.output_text.done", **where, text=self._text, logprobs=[])
        out += self._emit("response.content_part.done", **where, part=part)
        done = self._open_done()
        return out + self._emit(
            "response.output_item.done", output_index=len(self._output), item=done
        )

    def _close_call(self) -> bytes:
        assert self._open is not None
        if not self._open["arguments"]:  # clients json.loads the arguments
            self._open["arguments"] = "{}"
        where = self._where(content=False)
        arguments = self._open["arguments"]
        out = self._emit("response.function_call_arguments.done", **where, arguments=arguments)
        done = self._open_done()
        return out + self._emit(
            "response.output_item.done", output_index=len(self._output), item=done
        )

    def _completed(self) -> bytes:
        stop = self._finish.stop if self._finish else StopReason.END
        status, incomplete = _status(stop)
        response = self._response(status)
        response["incomplete_details"] = incomplete
        if self._usage is not None:
            response["usage"] = encode_usage(self._usage)
        return self._emit(f"response.{status}", response=response)

    def _failed(self, error: ErrorInfo) -> bytes:
        response = self._response("failed")
        response["error"] = chat_encode_error(error)["error"]
        if self._usage is not None:
            response["usage"] = encode_usage(self._usage)
        return self._emit("response.failed", response=response)
