"""OpenAI Chat Completions (``POST /v1/chat/completions``) to and from the neutral model.

Wire facts this codec relies on:

* system and developer messages lead the conversation and become the
  neutral system prompt; one after the conversation began has no equivalent
  in the other dialects (moving it to the top would change what it refers
  to), so the request is not translated;
* a ``name`` on messages tells speakers apart: with one speaker it is
  omitted (named), with several the request is not translated;
* a tool result marked as an error reaches OpenAI as its text prefixed with
  ``Error: `` (OpenAI tool messages have no error flag); a result in several
  text parts is joined with a blank line;
* sampling knobs and ``reasoning_effort`` go only to models that take them
  (:mod:`~tollhouse.translate.capabilities`); an effort the model lacks is
  sent as its nearest one, named;
* ``tool_calls[].function.arguments`` is a JSON *string*; tool results are
  ``role: "tool"`` messages carrying ``tool_call_id`` and no tool name (the
  name is recovered from the matching call);
* ``usage.prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``;
  ``completion_tokens`` includes ``reasoning_tokens``;
* a stream reports usage only when asked (``stream_options.include_usage``),
  in a ``choices: []`` chunk after the finish-reason chunk, then ``[DONE]``.
  Requests this codec encodes always ask, so a client of another dialect
  gets its usage.
"""

from __future__ import annotations

import time
from typing import Any

from tollhouse.metering.sse import SSEEvent
from tollhouse.translate.capabilities import capabilities, nearest_effort
from tollhouse.translate.model import (
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
    data_url,
    dump_arguments,
    join_result,
    kind_for_status,
    midstream_error,
    opt_float,
    opt_int,
    parse_arguments,
    parse_data_url,
    reasoning_effort,
    sampling_knobs,
    stop_list,
    text_of,
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
    load_event,
    malformed,
    sse,
)

NAME = "openai-chat"
SYSTEM_JOIN = "\n\n"

_AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg"}
_FINISH_IN = {
    "stop": StopReason.END,
    "length": StopReason.LENGTH,
    "tool_calls": StopReason.TOOL_CALLS,
    "function_call": StopReason.TOOL_CALLS,
    "content_filter": StopReason.CONTENT_FILTER,
}
_FINISH_OUT = {
    StopReason.LENGTH: "length",
    StopReason.TOOL_CALLS: "tool_calls",
    StopReason.CONTENT_FILTER: "content_filter",
    StopReason.REFUSAL: "content_filter",
}
# Neutral error kind -> (type, code), as OpenAI itself reports them.
_ERRORS_OUT = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", None),
    "not_found": ("invalid_request_error", "model_not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit": ("requests", "rate_limit_exceeded"),
    "quota": ("insufficient_quota", "insufficient_quota"),
    "overloaded": ("server_error", None),
    "timeout": ("server_error", "timeout"),
    "api_error": ("server_error", None),
}
_ERRORS_IN = {
    "insufficient_quota": "quota",
    "rate_limit_exceeded": "rate_limit",
    "model_not_found": "not_found",
    "invalid_api_key": "authentication",
    "authentication_error": "authentication",
    "permission_error": "permission",
    "request_too_large": "request_too_large",
}


def unix_time() -> int:
    """``created`` for responses whose upstream gave no time (Anthropic, Gemini)."""
    return int(time.time())


class OpenAIChatCodec:
    name = NAME

    def decode_request(self, payload: dict[str, Any]) -> Request:
        return decode_request(payload)

    def encode_request(self, request: Request, *, model: str, stream: bool) -> dict[str, Any]:
        return encode_request(request, model=model, stream=stream)

    def decode_response(self, body: dict[str, Any]) -> Response:
        return decode_response(body)

    def encode_response(self, response: Response, *, model: str) -> dict[str, Any]:
        return encode_response(response, model=model)

    def stream_decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def stream_encoder(self, *, model: str, include_usage: bool) -> OpenAIStreamEncoder:
        return OpenAIStreamEncoder(model, include_usage)

    def decode_error(self, status: int, body: Any) -> ErrorInfo | None:
        return decode_error(status, body)

    def encode_error(self, error: ErrorInfo) -> dict[str, Any]:
        return encode_error(error)

    def repair(self, payload: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        return payload, ()  # nothing a fallback's turn makes unacceptable


# --- requests: wire -> neutral


def _refuse(payload: dict[str, Any]) -> None:
    """Request features no other dialect can serve."""
    n = payload.get("n")
    if isinstance(n, int) and n > 1:
        raise Untranslatable("n>1")
    if payload.get("logprobs") or payload.get("top_logprobs") is not None:
        raise Untranslatable("logprobs")
    if payload.get("logit_bias"):
        raise Untranslatable("logit_bias (token ids are model-specific)")
    if payload.get("audio") or "audio" in as_list(payload.get("modalities")):
        raise Untranslatable("audio output")
    if payload.get("functions") or payload.get("function_call"):
        raise Untranslatable("legacy functions/function_call (use tools)")
    if payload.get("web_search_options") is not None:
        raise Untranslatable("web_search_options")


# Fields read below, or refused above when set; the rest are named as omitted
# unless they cannot change the answer (storage, billing tier, cache keys).
_READ = frozenset(
    [
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
        "user",
        "safety_identifier",
        "stream",
        "stream_options",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "audio",
        "modalities",
        "functions",
        "function_call",
        "web_search_options",
    ]
)
_HARMLESS = frozenset(
    ["store", "metadata", "service_tier", "prompt_cache_key", "prompt_cache_retention"]
)


def _unread(payload: dict[str, Any], request: Request) -> None:
    for key in payload:
        if key not in _READ and key not in _HARMLESS:
            request.omit(key)


def decode_request(payload: dict[str, Any]) -> Request:
    _refuse(payload)
    system, messages = _decode_messages(as_list(payload.get("messages")))
    tools = _decode_tools(payload.get("tools"))
    choice, tools = _decode_tool_choice(payload.get("tool_choice"), tools)
    parallel = payload.get("parallel_tool_calls")
    effort = payload.get("reasoning_effort")
    max_tokens = opt_int(payload.get("max_completion_tokens"))
    request = Request(
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel if isinstance(parallel, bool) else None,
        max_tokens=max_tokens if max_tokens is not None else opt_int(payload.get("max_tokens")),
        temperature=opt_float(payload.get("temperature")),
        top_p=opt_float(payload.get("top_p")),
        stop=stop_list(payload.get("stop")),
        seed=opt_int(payload.get("seed")),
        presence_penalty=opt_float(payload.get("presence_penalty")),
        frequency_penalty=opt_float(payload.get("frequency_penalty")),
        reasoning=Reasoning(effort=effort) if isinstance(effort, str) else None,
        output_format=_decode_response_format(payload.get("response_format")),
        user=_user(payload),
        strict_tools=_strict_tools(payload.get("tools")),
    )
    _unread(payload, request)
    if _speakers(as_list(payload.get("messages"))):
        request.omit("message name (one speaker)")
    return request


def _speakers(raw: list[Any]) -> bool:
    """Whether messages carry a speaker ``name``; several speakers do not translate."""
    names = {str(m["name"]) for m in map(as_dict, raw) if m.get("name")}
    if len(names) > 1:
        raise Untranslatable("messages from several named speakers (name)")
    return bool(names)


def _strict_tools(raw: Any) -> bool:
    return any(as_dict(as_dict(t).get("function")).get("strict") is True for t in as_list(raw))


def _user(payload: dict[str, Any]) -> str | None:
    for key in ("user", "safety_identifier"):
        if isinstance(value := payload.get(key), str) and value:
            return value
    return None


def _decode_messages(raw: list[Any]) -> tuple[str, list[Message]]:
    system: list[str] = []
    messages: list[Message] = []
    names: dict[str, str] = {}  # tool_call_id -> tool name, to name the results
    for item in raw:
        message = as_dict(item)
        role = message.get("role")
        if role in ("system", "developer"):
            if messages:
                raise Untranslatable(f"a {role} message mid-conversation")
            system.append(_plain_text(message.get("content")))
        elif role == "user":
            messages.append(Message("user", _decode_user_content(message.get("content"))))
        elif role == "assistant":
            messages.append(_decode_assistant(message, names))
        elif role == "tool":
            messages.append(Message("user", [_decode_tool_message(message, names)]))
        else:
            raise Untranslatable(f"message role {role!r}")
    return SYSTEM_JOIN.join(s for s in system if s), messages


def _plain_text(content: Any) -> str:
    """Text of a string content or of a list of text parts."""
    if isinstance(content, str):
        return content
    return "".join(str(as_dict(p).get("text") or "") for p in as_list(content))


def _decode_user_content(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)] if content else []
    return [part for item in as_list(content) if (part := _decode_user_part(as_dict(item)))]


def _decode_user_part(part: dict[str, Any]) -> Part | None:
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        return Text(text) if isinstance(text, str) and text else None
    if kind == "image_url":
        url = str(as_dict(part.get("image_url")).get("url") or "")
        return parse_data_url(url) or Media("image/*", url=url)
    if kind == "input_audio":
        audio = as_dict(part.get("input_audio"))
        media_type = _AUDIO_FORMATS.get(str(audio.get("format")), "audio/wav")
        return Media(media_type, str(audio.get("data") or ""))
    if kind == "file":
        file = as_dict(part.get("file"))
        media = parse_data_url(str(file.get("file_data") or ""))
        if media is None:
            raise Untranslatable("file input by file_id (only inline file_data translates)")
        return media
    raise Untranslatable(f"{kind} content part")


def _decode_assistant(message: dict[str, Any], names: dict[str, str]) -> Message:
    if message.get("audio"):
        raise Untranslatable("assistant audio")
    parts: list[Part] = []
    text = _plain_text(message.get("content")) + str(message.get("refusal") or "")
    if text:
        parts.append(Text(text))
    for raw in as_list(message.get("tool_calls")):
        call = as_dict(raw)
        if call.get("type", "function") != "function":
            raise Untranslatable(f"{call.get('type')} tool call")
        function = as_dict(call.get("function"))
        call_id, name = str(call.get("id") or ""), str(function.get("name") or "")
        names[call_id] = name
        parts.append(ToolCall(call_id, name, parse_arguments(function.get("arguments"))))
    return Message("assistant", parts)


def _decode_tool_message(message: dict[str, Any], names: dict[str, str]) -> ToolResult:
    call_id = str(message.get("tool_call_id") or "")
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    else:  # text parts stay parts: joining them is each target's choice
        texts = [str(as_dict(p).get("text") or "") for p in as_list(content)]
    parts = tuple(Text(text) for text in texts if text)
    return ToolResult(call_id, names.get(call_id, ""), parts)


def _decode_tools(raw: Any) -> list[Tool]:
    tools = []
    for item in as_list(raw):
        tool = as_dict(item)
        if tool.get("type", "function") != "function":
            raise Untranslatable(f"{tool.get('type')} tools")
        function = as_dict(tool.get("function"))
        parameters = as_dict(function.get("parameters")) or {"type": "object", "properties": {}}
        description = str(function.get("description") or "")
        tools.append(Tool(str(function.get("name") or ""), description, parameters))
    return tools


def _decode_tool_choice(raw: Any, tools: list[Tool]) -> tuple[ToolChoice | None, list[Tool]]:
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw), tools
    choice = as_dict(raw)
    if choice.get("type") == "function":
        return ToolChoice("tool", str(as_dict(choice.get("function")).get("name") or "")), tools
    if choice.get("type") == "allowed_tools":
        allowed = as_dict(choice.get("allowed_tools"))
        listed = (as_dict(as_dict(t).get("function")) for t in as_list(allowed.get("tools")))
        names = {function.get("name") for function in listed}
        mode: ChoiceMode = "required" if allowed.get("mode") == "required" else "auto"
        return ToolChoice(mode), [t for t in tools if t.name in names]
    if choice:
        raise Untranslatable(f"tool_choice {choice.get('type')}")
    return None, tools


def _decode_response_format(raw: Any) -> OutputFormat | None:
    fmt = as_dict(raw)
    if fmt.get("type") == "json_object":
        return OutputFormat()
    if fmt.get("type") == "json_schema":
        spec = as_dict(fmt.get("json_schema"))
        name = str(spec.get("name") or "response")
        schema = as_dict(spec.get("schema")) or {"type": "object"}
        return OutputFormat(schema, name, spec.get("strict") is True)
    return None


# --- requests: neutral -> wire


def encode_request(request: Request, *, model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": _encode_messages(request)}
    if request.tools:
        body["tools"] = [_encode_tool(tool, request.strict_tools) for tool in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _encode_tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    body.update(_sampling(request, model))
    if request.output_format is not None:
        body["response_format"] = _encode_response_format(request.output_format)
    if request.user:
        body["user"] = request.user
    if stream:
        # Always ask for usage: the client's own dialect reports it unasked.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _sampling(request: Request, model: str) -> dict[str, Any]:
    """Limits, stops, and the sampling knobs and effort ``model`` takes (others named)."""
    caps = capabilities(NAME, model)
    fields: dict[str, Any] = {
        "max_completion_tokens": request.max_tokens,
        "stop": request.stop or None,
        "reasoning_effort": _effort(request, caps.efforts, model),
    }
    for knob, value in sampling_knobs(request).items():
        if knob in caps.sampling:
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
            request.omit(f"reasoning_effort ({model} does not reason)")
        return None
    sent = nearest_effort(effort, accepted)
    if sent != effort:
        request.omit(f"reasoning_effort {effort} (sent as {sent}, the nearest {model} takes)")
    return sent


def _encode_messages(request: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for message in request.messages:
        if not message.parts:
            continue  # OpenAI rejects empty turns
        if message.role == "assistant":
            out.append(_encode_assistant(message))
        else:
            out += _encode_user(message)
    return out


def _encode_user(message: Message) -> list[dict[str, Any]]:
    """Tool results become ``tool`` messages, placed first; the rest one user message."""
    results = [p for p in message.parts if isinstance(p, ToolResult)]
    out = [_encode_tool_result(result) for result in results]
    rest = [p for p in message.parts if not isinstance(p, ToolResult)]
    if len(rest) == 1 and isinstance(rest[0], Text):
        out.append({"role": "user", "content": rest[0].text})
    elif rest:
        out.append({"role": "user", "content": [_encode_user_part(p) for p in rest]})
    return out


def _encode_user_part(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Media):
        return _encode_media(part)
    raise Untranslatable(f"a {type(part).__name__} in a user message to {NAME}")


def _encode_media(media: Media) -> dict[str, Any]:
    if media.media_type.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": media.url or data_url(media)}}
    audio_format = {v: k for k, v in _AUDIO_FORMATS.items()}.get(media.media_type)
    if audio_format and not media.url:
        return {"type": "input_audio", "input_audio": {"data": media.data, "format": audio_format}}
    if media.media_type == "application/pdf" and not media.url:
        file = {"file_data": data_url(media), "filename": "document.pdf"}
        return {"type": "file", "file": file}
    raise unsupported_media(media, NAME)


ERROR_PREFIX = "Error: "
"""How a failed tool result reads to OpenAI, which has no error flag."""


def _encode_tool_result(result: ToolResult) -> dict[str, Any]:
    if any(isinstance(p, Media) for p in result.content):
        raise Untranslatable(f"media in a tool result to {NAME}")
    text = join_result(result.content)
    if result.is_error:
        text = ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": result.call_id, "content": text}


def _encode_assistant(message: Message) -> dict[str, Any]:
    if any(isinstance(p, Media | ToolResult) for p in message.parts):
        raise Untranslatable(f"media in an assistant message to {NAME}")
    text = text_of(message.parts)
    out: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls = [p for p in message.parts if isinstance(p, ToolCall)]
    if calls:
        out["tool_calls"] = [_encode_call(call) for call in calls]
    return out


def _encode_call(call: ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": dump_arguments(call.arguments)}
    return {"id": call.id, "type": "function", "function": function}


def _encode_tool(tool: Tool, strict: bool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters
    if strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _encode_tool_choice(choice: ToolChoice) -> Any:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _encode_response_format(fmt: OutputFormat) -> dict[str, Any]:
    if fmt.schema is None:
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema}
    if fmt.strict:
        spec["strict"] = True
    return {"type": "json_schema", "json_schema": spec}


# --- responses


def decode_usage(raw: Any) -> Usage | None:
    usage = as_dict(raw)
    if not usage:
        return None
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens")),
        output_tokens=as_int(usage.get("completion_tokens")),
        cache_read_tokens=as_int(as_dict(usage.get("prompt_tokens_details")).get("cached_tokens")),
        reasoning_tokens=as_int(
            as_dict(usage.get("completion_tokens_details")).get("reasoning_tokens")
        ),
    )


def encode_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def decode_response(body: dict[str, Any]) -> Response:
    choice = as_dict(next(iter(as_list(body.get("choices"))), None))
    message = _decode_assistant(as_dict(choice.get("message")), {})
    stop = _FINISH_IN.get(str(choice.get("finish_reason")), StopReason.OTHER)
    if as_dict(choice.get("message")).get("refusal"):
        stop = StopReason.REFUSAL
    created = body.get("created")
    return Response(
        id=str(body.get("id") or ""),
        parts=[p for p in message.parts if isinstance(p, Text | ToolCall)],
        stop=stop,
        usage=decode_usage(body.get("usage")),
        created=created if isinstance(created, int) else None,
    )


def encode_response(response: Response, *, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text_of(response.parts) or None,
        "refusal": None,
    }
    calls = [p for p in response.parts if isinstance(p, ToolCall)]
    if calls:
        message["tool_calls"] = [_encode_call(call) for call in calls]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _FINISH_OUT.get(response.stop, "stop"),
    }
    body: dict[str, Any] = {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created if response.created is not None else unix_time(),
        "model": model,
        "choices": [choice],
    }
    if response.usage is not None:
        body["usage"] = encode_usage(response.usage)
    return body


# --- errors


def decode_error(status: int, body: Any) -> ErrorInfo | None:
    error = as_dict(as_dict(body).get("error"))
    if not error:
        return None
    code, kind = error.get("code"), error.get("type")
    found = _ERRORS_IN.get(str(code)) or _ERRORS_IN.get(str(kind))
    if found is None and kind in ("requests", "tokens"):
        found = "rate_limit"
    message = str(error.get("message") or "")
    return ErrorInfo(status, found or kind_for_status(status), message)


def encode_error(error: ErrorInfo) -> dict[str, Any]:
    kind, code = _ERRORS_OUT.get(error.kind, ("server_error", None))
    return {"error": {"message": error.message, "type": kind, "param": None, "code": code}}


# --- streams


class OpenAIStreamDecoder(SSEDecoder):
    """``chat.completion.chunk`` events to neutral events."""

    def __init__(self) -> None:
        super().__init__()
        self._started = False
        self._tools: set[int] = set()
        self._refused = False

    def on_event(self, event: SSEEvent) -> list[StreamEvent]:
        if event.data.strip() == b"[DONE]":
            return [Done()]
        chunk = load_event(event)
        if chunk is None:
            return [malformed(event)]
        if chunk.get("error"):
            return [StreamFailed(midstream_error(decode_error(0, chunk)))]
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(Start(str(chunk.get("id") or "")))
        for choice in as_list(chunk.get("choices"))[:1]:
            out += self._choice(as_dict(choice))
        if (usage := decode_usage(chunk.get("usage"))) is not None:
            out.append(UsageUpdate(usage))
        return out

    def _choice(self, choice: dict[str, Any]) -> list[StreamEvent]:
        delta = as_dict(choice.get("delta"))
        out: list[StreamEvent] = []
        for key in ("content", "refusal"):
            if isinstance(text := delta.get(key), str) and text:
                self._refused |= key == "refusal"
                out.append(TextDelta(text))
        for call in as_list(delta.get("tool_calls")):
            out += self._tool_call(as_dict(call))
        if finish := choice.get("finish_reason"):
            stop = _FINISH_IN.get(str(finish), StopReason.OTHER)
            out.append(Finish(StopReason.REFUSAL if self._refused else stop))
        return out

    def _tool_call(self, call: dict[str, Any]) -> list[StreamEvent]:
        index = as_int(call.get("index"))
        function = as_dict(call.get("function"))
        out: list[StreamEvent] = []
        if index not in self._tools:
            self._tools.add(index)
            out.append(ToolStart(index, str(call.get("id") or ""), str(function.get("name") or "")))
        if isinstance(args := function.get("arguments"), str) and args:
            out.append(ToolArgs(index, args))
        return out


class OpenAIStreamEncoder:
    """Neutral events to ``chat.completion.chunk`` SSE, ending with ``data: [DONE]``."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = ""
        self._created = unix_time()
        self._started = False
        self._argued: dict[int, bool] = {}  # tool index -> any argument bytes sent
        self._finish: Finish | None = None
        self._usage: Usage | None = None

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            self._id = event.id
            return self._start()
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return b""
        if isinstance(event, Finish):
            self._finish = event
            return b""
        if isinstance(event, StreamFailed):
            return sse(encode_error(event.error))
        return self._start() + self._content(event)

    def _content(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._delta({"content": event.text})
        if isinstance(event, ToolStart):
            self._argued[event.index] = False
            function = {"name": event.name, "arguments": ""}
            call = {"index": event.index, "id": event.id, "type": "function", "function": function}
            return self._delta({"tool_calls": [call]})
        if isinstance(event, ToolArgs):
            self._argued[event.index] = True
            call = {"index": event.index, "function": {"arguments": event.fragment}}
            return self._delta({"tool_calls": [call]})
        if isinstance(event, ToolEnd):
            return self._empty_arguments(event.index)
        if isinstance(event, Done):
            return self._done()
        return b""

    def _empty_arguments(self, index: int) -> bytes:
        """A call without arguments still needs valid JSON: clients ``json.loads`` them."""
        if self._argued.get(index, True):
            return b""
        return self._content(ToolArgs(index, "{}"))

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._delta({"role": "assistant", "content": ""})

    def _done(self) -> bytes:
        out = b"".join(self._empty_arguments(index) for index in list(self._argued))
        stop = self._finish.stop if self._finish else StopReason.END
        out += self._chunk([_choice({}, _FINISH_OUT.get(stop, "stop"))])
        if self._include_usage and self._usage is not None:
            out += self._chunk([], encode_usage(self._usage))
        return out + b"data: [DONE]\n\n"

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._chunk([_choice(delta, None)])

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage
        return sse(chunk)


def _choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
