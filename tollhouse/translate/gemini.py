"""Gemini ``generateContent`` / ``streamGenerateContent?alt=sse`` to and from the neutral model.

The model name and the stream flag live in the URL, so requests here are
bodies only. Wire facts this codec relies on:

* roles are ``user`` and ``model``; the system prompt is
  ``systemInstruction``; fields are camelCase on the wire (snake_case is
  also read, as the REST API accepts both);
* function calls carry no ids (newer APIs sometimes do): ids are
  synthesised from the position (``call_{turn}_{part}`` in requests,
  ``call_{n}_{responseId}`` in responses, stable for the same input), and a
  ``functionResponse`` is matched to its call by id when it has one, else
  by name in order;
* a ``functionResponse.response`` is an object: a tool result whose text is
  a JSON object is sent as that object, other text as ``{"output": text}``
  (``{"error": text}`` for failures);
* calls translated from other dialects carry the documented dummy
  ``thoughtSignature`` (Gemini 3 rejects model function calls without one),
  in requests to Gemini and in answers to Gemini clients alike (the client
  sends the answer back next turn); real signatures are Gemini-only and are
  named as omitted when a request goes elsewhere;
* ``safetySettings`` that only relax Gemini's filters (``BLOCK_NONE``,
  ``OFF``) are omitted, named; stricter ones no other provider can apply, so
  the request is not translated;
* a failed generation (``MALFORMED_FUNCTION_CALL``, ``OTHER``,
  ``UNEXPECTED_TOOL_CALL``...) reaches clients of other dialects as an error
  (:class:`~tollhouse.translate.model.GenerationFailed`, a stream error
  event), never as a normal empty answer; safety stops are refusals;
* an answer without ``responseId`` gets a stable one derived from its body;
* tool schemas go out as ``parametersJsonSchema`` (full JSON Schema);
  OpenAPI-style ``parameters`` coming in are normalised to JSON Schema;
* ``usageMetadata.promptTokenCount`` includes ``cachedContentTokenCount``;
  ``thoughtsTokenCount`` is output not counted in ``candidatesTokenCount``;
* a stream is a series of whole responses; function calls arrive whole; the
  last chunk has ``finishReason``; there is no end marker.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from tollhouse.metering.sse import SSEEvent
from tollhouse.translate.capabilities import Capabilities, capabilities
from tollhouse.translate.model import (
    GENERATION_FAILED,
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
    join_result,
    join_texts,
    kind_for_status,
    merge_roles,
    midstream_error,
    opt_float,
    opt_int,
    parse_arguments,
    reasoning_budget,
    require_inline,
    sampling_knobs,
    stop_list,
)
from tollhouse.translate.stream import (
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

NAME = "gemini"
SYSTEM_JOIN = "\n\n"
# Google's documented placeholder for function calls that did not come from
# Gemini (conversations moved over from another model).
DUMMY_SIGNATURE = "skip_thought_signature_validator"
_DYNAMIC_BUDGET = -1
_NEWLINE = b"\r\n"

_FAILED = (
    "MALFORMED_FUNCTION_CALL",
    "OTHER",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "FINISH_REASON_UNSPECIFIED",
    "MISSING_THOUGHT_SIGNATURE",
    "NO_IMAGE",
    "LANGUAGE",
)
_RELAXED = ("BLOCK_NONE", "OFF", "HARM_BLOCK_THRESHOLD_UNSPECIFIED")
_READ = frozenset(
    [
        "contents",
        "systemInstruction",
        "system_instruction",
        "tools",
        "toolConfig",
        "tool_config",
        "generationConfig",
        "generation_config",
        "cachedContent",
        "cached_content",
        "safetySettings",
        "safety_settings",
        "model",
        "labels",  # billing labels: cannot change the answer
    ]
)
_CONFIG_READ = frozenset(
    [
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "stopSequences",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "thinkingConfig",
        "responseMimeType",
        "responseJsonSchema",
        "responseSchema",
        "candidateCount",
        "responseModalities",
        "responseLogprobs",
        "logprobs",
        "speechConfig",
    ]
)
_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR")
_FINISH_IN = {
    "STOP": StopReason.END,
    "MAX_TOKENS": StopReason.LENGTH,
    **{reason: StopReason.CONTENT_FILTER for reason in _FILTERED},
    "IMAGE_SAFETY": StopReason.CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": StopReason.CONTENT_FILTER,
}
_FINISH_OUT = {
    StopReason.LENGTH: "MAX_TOKENS",
    StopReason.CONTENT_FILTER: "SAFETY",
    StopReason.REFUSAL: "SAFETY",
    StopReason.OTHER: "OTHER",
}
_MODES_IN: dict[str, ChoiceMode] = {
    "AUTO": "auto",
    "VALIDATED": "auto",
    "ANY": "required",
    "NONE": "none",
}
_MODES_OUT = {"auto": "AUTO", "required": "ANY", "tool": "ANY", "none": "NONE"}
_STATUS_IN = {
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "UNAUTHENTICATED": "authentication",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "overloaded",
    "DEADLINE_EXCEEDED": "timeout",
    "INTERNAL": "api_error",
}
_STATUS_OUT = {
    "invalid_request": "INVALID_ARGUMENT",
    "request_too_large": "INVALID_ARGUMENT",
    "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED",
    "not_found": "NOT_FOUND",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "quota": "RESOURCE_EXHAUSTED",
    "overloaded": "UNAVAILABLE",
    "timeout": "DEADLINE_EXCEEDED",
}
_BAD_ID = re.compile(r"[^a-zA-Z0-9_-]")
_CAPITAL = re.compile(r"([A-Z])")


class GeminiCodec:
    name = NAME

    def decode_request(self, payload: dict[str, Any]) -> Request:
        return decode_request(payload)

    def encode_request(self, request: Request, *, model: str, stream: bool) -> dict[str, Any]:
        return encode_request(request, model)

    def decode_response(self, body: dict[str, Any]) -> Response:
        return decode_response(body)

    def encode_response(self, response: Response, *, model: str) -> dict[str, Any]:
        return encode_response(response, model=model)

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder()

    def stream_encoder(self, *, model: str, include_usage: bool) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(model)

    def decode_error(self, status: int, body: Any) -> ErrorInfo | None:
        return decode_error(status, body)

    def encode_error(self, error: ErrorInfo) -> dict[str, Any]:
        return encode_error(error)

    def repair(self, payload: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        return payload, ()  # nothing a fallback's turn makes unacceptable


def field(obj: dict[str, Any], camel: str) -> Any:
    """``obj[camel]``, else the snake_case spelling the REST API also accepts."""
    if camel in obj:
        return obj[camel]
    return obj.get(_CAPITAL.sub(r"_\1", camel).lower())


def json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style ``Schema`` (``"type": "OBJECT"``, ``nullable``) as JSON Schema."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = json_schema(value)
        elif key not in ("nullable", "propertyOrdering"):
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# --- requests: wire -> neutral


def _refuse(payload: dict[str, Any], config: dict[str, Any]) -> None:
    if field(payload, "cachedContent"):
        raise Untranslatable("cachedContent (a server-side Gemini cache)")
    count = field(config, "candidateCount")
    if isinstance(count, int) and count > 1:
        raise Untranslatable("candidateCount>1")
    for modality in as_list(field(config, "responseModalities")):
        if str(modality).upper() != "TEXT":
            raise Untranslatable(f"{str(modality).lower()} output")
    if field(config, "responseLogprobs") or field(config, "logprobs") is not None:
        raise Untranslatable("logprobs")
    if field(config, "speechConfig"):
        raise Untranslatable("speech output")
    if field(as_dict(field(config, "thinkingConfig")), "includeThoughts"):
        raise Untranslatable("visible thoughts (thinkingConfig.includeThoughts)")
    mime = field(config, "responseMimeType")
    if mime not in (None, "text/plain", "application/json"):
        raise Untranslatable(f"responseMimeType {mime}")
    for setting in as_list(field(payload, "safetySettings")):
        threshold = str(as_dict(setting).get("threshold") or "")
        if threshold not in _RELAXED:
            raise Untranslatable(f"safetySettings {threshold} (no other provider can apply it)")


def _unread(payload: dict[str, Any], config: dict[str, Any], request: Request) -> None:
    if field(payload, "safetySettings"):
        request.omit("safetySettings (relaxed filters; the target applies its own)")
    for key in payload:
        if key not in _READ:
            request.omit(key)
    for key in config:
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
        if camel not in _CONFIG_READ:
            request.omit(f"generationConfig.{camel}")
    if _signed(as_list(payload.get("contents"))):
        request.omit("thought signatures (only Gemini can read them)")


def _signed(contents: list[Any]) -> bool:
    for content in contents:
        for part in as_list(as_dict(content).get("parts")):
            signature = field(as_dict(part), "thoughtSignature")
            if (signature and signature != DUMMY_SIGNATURE) or as_dict(part).get("thought"):
                return True
    return False


def decode_request(payload: dict[str, Any]) -> Request:
    config = as_dict(field(payload, "generationConfig"))
    _refuse(payload, config)
    tools, choice = _decode_tools(payload)
    request = Request(
        messages=_decode_contents(as_list(payload.get("contents"))),
        system=_decode_system(field(payload, "systemInstruction")),
        tools=tools,
        tool_choice=choice,
        max_tokens=opt_int(field(config, "maxOutputTokens")),
        temperature=opt_float(field(config, "temperature")),
        top_p=opt_float(field(config, "topP")),
        top_k=opt_int(field(config, "topK")),
        stop=stop_list(field(config, "stopSequences")),
        seed=opt_int(field(config, "seed")),
        presence_penalty=opt_float(field(config, "presencePenalty")),
        frequency_penalty=opt_float(field(config, "frequencyPenalty")),
        reasoning=_decode_thinking(as_dict(field(config, "thinkingConfig"))),
        output_format=_decode_format(config),
    )
    _unread(payload, config, request)
    return request


def _decode_system(system: Any) -> str:
    if isinstance(system, str):
        return system
    texts = (str(as_dict(part).get("text") or "") for part in as_list(as_dict(system).get("parts")))
    return SYSTEM_JOIN.join(text for text in texts if text)


class _Calls:
    """Function calls awaiting their responses, to give each response its call id."""

    def __init__(self) -> None:
        self.pending: list[ToolCall] = []

    def match(self, response: dict[str, Any]) -> ToolCall:
        name, call_id = response.get("name"), response.get("id")
        by_id = [call for call in self.pending if call_id and call.id == call_id]
        matches = by_id or [call for call in self.pending if call.name == name]
        if matches:
            self.pending.remove(matches[0])
            return matches[0]
        raise Untranslatable(f"functionResponse {name!r} without a matching functionCall")


def _decode_contents(raw: list[Any]) -> list[Message]:
    calls = _Calls()
    messages = []
    for turn, item in enumerate(raw):
        content = as_dict(item)
        role: Role = "assistant" if content.get("role") == "model" else "user"
        parts = [
            part
            for index, raw_part in enumerate(as_list(content.get("parts")))
            if (part := _decode_part(as_dict(raw_part), f"call_{turn}_{index}", calls))
        ]
        messages.append(Message(role, parts))
    return messages


def _decode_part(part: dict[str, Any], call_id: str, calls: _Calls) -> Part | None:
    if "text" in part:
        text = part["text"]
        return Text(text) if isinstance(text, str) and text and not part.get("thought") else None
    if blob := as_dict(field(part, "inlineData")):
        return Media(str(field(blob, "mimeType") or ""), str(blob.get("data") or ""))
    if file := as_dict(field(part, "fileData")):
        return _decode_file(file)
    if call := as_dict(field(part, "functionCall")):
        decoded = _decode_call(call, call_id)
        calls.pending.append(decoded)
        return decoded
    if response := as_dict(field(part, "functionResponse")):
        return _decode_function_response(response, calls.match(response))
    for key in ("executableCode", "codeExecutionResult"):
        if field(part, key):
            raise Untranslatable(key)
    return None  # thought signatures, video metadata: Gemini-only hints


def _decode_file(file: dict[str, Any]) -> Media:
    uri = str(field(file, "fileUri") or "")
    if not uri.startswith(("https://", "http://")):
        raise Untranslatable("fileData from uploaded files (only http(s) URLs translate)")
    return Media(str(field(file, "mimeType") or "image/*"), url=uri)


def _decode_call(call: dict[str, Any], call_id: str) -> ToolCall:
    name = str(call.get("name") or "")
    return ToolCall(str(call.get("id") or call_id), name, parse_arguments(call.get("args")))


def _decode_function_response(response: dict[str, Any], call: ToolCall) -> ToolResult:
    payload = as_dict(response.get("response"))
    if set(payload) == {"output"} and isinstance(payload["output"], str):
        return ToolResult(call.id, call.name, (Text(payload["output"]),))
    if set(payload) == {"error"}:
        error = payload["error"]
        text = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
        return ToolResult(call.id, call.name, (Text(text),), is_error=True)
    return ToolResult(call.id, call.name, (Text(json.dumps(payload, ensure_ascii=False)),))


def _decode_tools(payload: dict[str, Any]) -> tuple[list[Tool], ToolChoice | None]:
    tools: list[Tool] = []
    for entry in as_list(payload.get("tools")):
        for key, value in as_dict(entry).items():
            if key not in ("functionDeclarations", "function_declarations"):
                raise Untranslatable(f"Gemini tool {key}")
            tools += [_decode_declaration(as_dict(d)) for d in as_list(value)]
    config = as_dict(field(as_dict(field(payload, "toolConfig")), "functionCallingConfig"))
    if not config:
        return tools, None
    allowed = [str(name) for name in as_list(field(config, "allowedFunctionNames"))]
    if allowed:
        tools = [tool for tool in tools if tool.name in allowed]
    mode = _MODES_IN.get(str(config.get("mode") or "AUTO").upper(), "auto")
    if mode == "required" and len(allowed) == 1:
        return tools, ToolChoice("tool", allowed[0])
    return tools, ToolChoice(mode)


def _decode_declaration(declaration: dict[str, Any]) -> Tool:
    schema = field(declaration, "parametersJsonSchema")
    if schema is None:
        schema = json_schema(declaration.get("parameters"))
    parameters = as_dict(schema) or {"type": "object", "properties": {}}
    name = str(declaration.get("name") or "")
    return Tool(name, str(declaration.get("description") or ""), parameters)


def _decode_thinking(thinking: dict[str, Any]) -> Reasoning | None:
    budget = opt_int(field(thinking, "thinkingBudget"))
    level = field(thinking, "thinkingLevel")
    if budget is not None:
        if budget == 0:
            return Reasoning(effort="none")
        return Reasoning(budget=budget if budget > 0 else None)
    if isinstance(level, str):
        return Reasoning(effort=level.lower())
    return None


def _decode_format(config: dict[str, Any]) -> OutputFormat | None:
    if field(config, "responseMimeType") != "application/json":
        return None
    schema = field(config, "responseJsonSchema")
    if schema is None and (openapi := field(config, "responseSchema")) is not None:
        schema = json_schema(openapi)
    # A schema is enforced (constrained decoding): strict.
    return OutputFormat(as_dict(schema) if schema is not None else None, strict=schema is not None)


# --- requests: neutral -> wire


def encode_request(request: Request, model: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [_encode_content(m) for m in merge_roles(request.messages)]}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    if request.tools:
        declarations = [_encode_declaration(tool) for tool in request.tools]
        body["tools"] = [{"functionDeclarations": declarations}]
        if request.strict_tools:
            request.omit("strict tool schemas (Gemini function calling has no strict mode)")
        if request.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _encode_choice(request.tool_choice)}
    if config := _generation_config(request, model):
        body["generationConfig"] = config
    return body


_KNOBS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_LEAST_BUDGET = 128  # for models that always think (a budget of 0 is refused)


def _generation_config(request: Request, model: str) -> dict[str, Any]:
    caps = capabilities(NAME, model)
    config: dict[str, Any] = {
        "maxOutputTokens": request.max_tokens,
        "stopSequences": request.stop or None,
    }
    for knob, value in sampling_knobs(request).items():
        if knob in caps.sampling:
            config[_KNOBS[knob]] = value
        else:
            request.omit(f"{knob} ({model} does not take it)")
    if request.reasoning is not None:
        config["thinkingConfig"] = _thinking(request, caps, model)
    if request.output_format is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = request.output_format.schema
    return {key: value for key, value in config.items() if value is not None}


def _thinking(request: Request, caps: Capabilities, model: str) -> dict[str, Any] | None:
    budget = reasoning_budget(request.reasoning) if request.reasoning else None
    if caps.thinking == "none":
        if budget != 0:
            request.omit(f"reasoning ({model} does not think)")
        return None
    if budget == 0 and not caps.can_stop_thinking:
        request.omit(f"reasoning none ({model} always thinks: the least budget was sent)")
        budget = _LEAST_BUDGET
    if budget is not None and caps.max_budget is not None and budget > caps.max_budget:
        request.omit(
            f"thinking budget {budget} (sent as {caps.max_budget}, the most {model} takes)"
        )
        budget = caps.max_budget
    return {"thinkingBudget": _DYNAMIC_BUDGET if budget is None else budget}


def _encode_content(message: Message) -> dict[str, Any]:
    parts = [_encode_part(part) for part in message.parts]
    for part in parts:
        if "functionCall" in part:
            part["thoughtSignature"] = DUMMY_SIGNATURE  # the first call of the turn needs one
            break
    return {"role": "model" if message.role == "assistant" else "user", "parts": parts}


def _encode_part(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Media):
        require_inline(part, NAME)
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    if isinstance(part, ToolCall):
        return {"functionCall": {"name": part.name, "args": part.arguments}}
    return {"functionResponse": _encode_function_response(part)}


def _encode_function_response(result: ToolResult) -> dict[str, Any]:
    if any(isinstance(p, Media) for p in result.content):
        raise Untranslatable(f"media in a tool result to {NAME}")
    if not result.name:
        raise Untranslatable(f"tool result {result.call_id!r} without its tool call")
    text = join_result(result.content)
    key = "error" if result.is_error else "output"
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    response = parsed if isinstance(parsed, dict) and not result.is_error else {key: text}
    return {"name": result.name, "response": response}


def _encode_declaration(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["parametersJsonSchema"] = tool.parameters
    return out


def _encode_choice(choice: ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": _MODES_OUT[choice.mode]}
    if choice.mode == "tool":
        out["allowedFunctionNames"] = [choice.name]
    return out


# --- responses


def decode_usage(raw: Any) -> Usage | None:
    meta = as_dict(raw)
    if not meta:
        return None
    thoughts = as_int(field(meta, "thoughtsTokenCount"))
    prompt = as_int(field(meta, "promptTokenCount"))
    return Usage(
        input_tokens=prompt + as_int(field(meta, "toolUsePromptTokenCount")),
        output_tokens=as_int(field(meta, "candidatesTokenCount")) + thoughts,
        cache_read_tokens=as_int(field(meta, "cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def encode_usage(usage: Usage) -> dict[str, Any]:
    meta = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        meta["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def response_call_id(response_id: str, index: int) -> str:
    """A stable id for the ``index``-th function call of a response."""
    suffix = _BAD_ID.sub("_", response_id)
    return f"call_{index}_{suffix}" if suffix else f"call_{index}"


def _response_parts(candidate: dict[str, Any], response_id: str, first: int) -> list[Part]:
    parts: list[Part] = []
    calls = first
    for raw in as_list(as_dict(candidate.get("content")).get("parts")):
        part = as_dict(raw)
        if call := as_dict(field(part, "functionCall")):
            parts.append(_decode_call(call, response_call_id(response_id, calls)))
            calls += 1
        elif isinstance(text := part.get("text"), str) and text and not part.get("thought"):
            parts.append(Text(text))
    return parts


def _stop(candidate: dict[str, Any], body: dict[str, Any], calls: bool) -> StopReason | None:
    """The stop reason; :class:`GenerationFailed` when the generation failed."""
    reason = field(candidate, "finishReason")
    if reason in _FAILED:
        message = str(field(candidate, "finishMessage") or "")
        detail = f": {message[:500]}" if message else ""
        error = f"the model's generation failed (Gemini finishReason {reason}){detail}"
        raise GenerationFailed(ErrorInfo(502, GENERATION_FAILED, error))
    if reason is None:
        blocked = field(as_dict(field(body, "promptFeedback")), "blockReason")
        return StopReason.CONTENT_FILTER if blocked else None
    stop = _FINISH_IN.get(str(reason), StopReason.OTHER)
    return StopReason.TOOL_CALLS if stop is StopReason.END and calls else stop


def stable_response_id(body: dict[str, Any]) -> str:
    """The ``responseId``; a stable one made from the body when Gemini sent none."""
    given = field(body, "responseId")
    if isinstance(given, str) and given:
        return given
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"gen-{digest[:24]}"


def decode_response(body: dict[str, Any]) -> Response:
    candidate = as_dict(next(iter(as_list(body.get("candidates"))), None))
    response_id = stable_response_id(body)
    parts = _response_parts(candidate, response_id, 0)
    calls = any(isinstance(p, ToolCall) for p in parts)
    return Response(
        id=response_id,
        parts=join_texts([p for p in parts if isinstance(p, Text | ToolCall)]),
        stop=_stop(candidate, body, calls) or StopReason.OTHER,
        usage=decode_usage(field(body, "usageMetadata")),
    )


def _encode_response_part(part: Text | ToolCall) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"text": part.text}
    return {"functionCall": {"id": part.id, "name": part.name, "args": part.arguments}}


def _sign_first_call(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gemini 3 refuses a model turn whose first call has no signature; the client
    sends this answer back next turn, so it carries the documented dummy one."""
    for part in parts:
        if "functionCall" in part:
            part["thoughtSignature"] = DUMMY_SIGNATURE
            break
    return parts


def encode_response(response: Response, *, model: str) -> dict[str, Any]:
    parts = _sign_first_call([_encode_response_part(p) for p in response.parts])
    content = {"role": "model", "parts": parts}
    candidate = {
        "content": content,
        "finishReason": _FINISH_OUT.get(response.stop, "STOP"),
        "index": 0,
    }
    body: dict[str, Any] = {"candidates": [candidate]}
    if response.usage is not None:
        body["usageMetadata"] = encode_usage(response.usage)
    return body | {"modelVersion": model, "responseId": response.id}


# --- errors


def decode_error(status: int, body: Any) -> ErrorInfo | None:
    if isinstance(body, list):  # streamGenerateContent without alt=sse
        body = next(iter(body), None)
    error = as_dict(as_dict(body).get("error"))
    if not error:
        return None
    kind = _STATUS_IN.get(str(error.get("status"))) or kind_for_status(status)
    return ErrorInfo(status, kind, str(error.get("message") or ""))


def encode_error(error: ErrorInfo) -> dict[str, Any]:
    status = _STATUS_OUT.get(error.kind, "INTERNAL")
    return {"error": {"code": error.status, "message": error.message, "status": status}}


# --- streams


class GeminiStreamDecoder(SSEDecoder):
    """``streamGenerateContent?alt=sse`` chunks to neutral events."""

    def __init__(self) -> None:
        super().__init__()
        self._id: str | None = None
        self._calls = 0

    def on_event(self, event: SSEEvent) -> list[StreamEvent]:
        chunk = load_event(event)
        if chunk is None:
            return [malformed(event)]
        if chunk.get("error"):
            return [StreamFailed(midstream_error(decode_error(0, chunk)))]
        out: list[StreamEvent] = []
        if self._id is None:
            self._id = stable_response_id(chunk)
            out.append(Start(self._id))
        # Usage first: an Anthropic client's message_start can then carry it.
        if (usage := decode_usage(field(chunk, "usageMetadata"))) is not None:
            out.append(UsageUpdate(usage))
        candidate = as_dict(next(iter(as_list(chunk.get("candidates"))), None))
        for part in _response_parts(candidate, self._id, self._calls):
            out += self._part(part)
        try:
            stop = _stop(candidate, chunk, self._calls > 0)
        except GenerationFailed as failed:
            return [*out, StreamFailed(failed.error)]
        if stop is not None:
            out.append(Finish(stop))
        return out

    def _part(self, part: Part) -> list[StreamEvent]:
        if not isinstance(part, ToolCall):
            return [TextDelta(part.text)] if isinstance(part, Text) else []
        index = self._calls
        self._calls += 1
        arguments = json.dumps(part.arguments, ensure_ascii=False, separators=(",", ":"))
        return [ToolStart(index, part.id, part.name), ToolArgs(index, arguments), ToolEnd(index)]


class GeminiStreamEncoder:
    """Neutral events to ``alt=sse`` chunks; tool calls are held until whole."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._usage: Usage | None = None
        self._finish: Finish | None = None
        self._calls: dict[int, tuple[str, str, list[str]]] = {}  # index -> id, name, fragments
        self._signed = False

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, Start):
            self._id = event.id
        elif isinstance(event, UsageUpdate):
            self._usage = event.usage
        elif isinstance(event, Finish):
            self._finish = event
        elif isinstance(event, ToolStart):
            self._calls[event.index] = (event.id, event.name, [])
        elif isinstance(event, ToolArgs) and event.index in self._calls:
            self._calls[event.index][2].append(event.fragment)
        elif isinstance(event, ToolEnd):
            return self._flush_call(event.index)
        elif isinstance(event, TextDelta):
            return self._flush_calls() + self._chunk({"content": _content([{"text": event.text}])})
        elif isinstance(event, StreamFailed):
            return sse(encode_error(event.error), newline=_NEWLINE)
        else:  # Done
            return self._flush_calls() + self._last()
        return b""

    def _flush_calls(self) -> bytes:
        return b"".join(self._flush_call(index) for index in sorted(self._calls))

    def _flush_call(self, index: int) -> bytes:
        if index not in self._calls:
            return b""
        call_id, name, fragments = self._calls.pop(index)
        args = parse_arguments("".join(fragments))
        part: dict[str, Any] = {"functionCall": {"id": call_id, "name": name, "args": args}}
        if not self._signed:  # see _sign_first_call
            part["thoughtSignature"] = DUMMY_SIGNATURE
            self._signed = True
        return self._chunk({"content": _content([part])})

    def _last(self) -> bytes:
        stop = self._finish.stop if self._finish else StopReason.END
        candidate = {"finishReason": _FINISH_OUT.get(stop, "STOP")}
        usage = {} if self._usage is None else {"usageMetadata": encode_usage(self._usage)}
        return self._chunk(candidate, usage)

    def _chunk(self, candidate: dict[str, Any], extra: dict[str, Any] | None = None) -> bytes:
        chunk = {"candidates": [{**candidate, "index": 0}], **(extra or {})}
        chunk |= {"modelVersion": self._model, "responseId": self._id}
        return sse(chunk, newline=_NEWLINE)


def _content(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "model", "parts": parts}
