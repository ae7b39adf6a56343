"""Every client field the gateway reads, typed before use: one table per dialect.

The gateway (and, for fallback chains, the translators, the budget and
capacity estimates, the trust layer) reads a few dozen fields of a client's
body. Each is declared here once, with its JSON type; a body whose field has
the wrong type is answered 400 in the client's dialect, with the field's path
and the fix, before anything reads it. Only the fields present are checked
(a missing one is the upstream's to require), ``null`` reads as absent, and
fields not declared here pass through untouched, whatever they hold.

Sans-io and cheap: a handful of dict lookups and ``isinstance`` calls per
request, plus one per message and content part (bench/instructions.py).

>>> check({"model": "m", "max_tokens": "10"}, ANTHROPIC)
Traceback (most recent call last):
...
tollhouse.ingress.fields.FieldError: "max_tokens" must be a whole number of tokens ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from tollhouse.errors import BadRequest
from tollhouse.sane import MAX_TOKENS

Check = Callable[[Any, str], None]
"""Checks one value at a path (``messages[0].content``); raises :class:`FieldError`."""
Spec = Mapping[str, Check]


class FieldError(BadRequest):
    """A field of the client's body has the wrong type; ``param`` is its path."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def check(payload: Mapping[str, Any], spec: Spec, where: str = "") -> None:
    """Check every field of ``spec`` that ``payload`` holds (not None)."""
    for name, value in payload.items():  # bodies hold fewer fields than the tables
        field_check = spec.get(name)
        if field_check is not None and value is not None:
            field_check(value, where + name)


def describe(value: Any) -> str:
    """What a JSON value is, for a message: 'a string ("10")', 'a list', 'true'."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:19] + "…"
        return f"a string ({shown!r})"
    if isinstance(value, int):
        if value.bit_length() <= 64:
            return f"the number {value}"
        return f"a {int(value.bit_length() * 0.30103) + 1}-digit number"  # about: log10(2)
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _wrong(where: str, wanted: str, value: Any) -> FieldError:
    return FieldError(where, f'"{where}" must be {wanted}; got {describe(value)}')


# Leaf checks -----------------------------------------------------------------


def boolean(value: Any, where: str) -> None:
    if value is not True and value is not False:
        raise _wrong(where, 'true or false (JSON booleans, not strings like "true")', value)


def string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _wrong(where, "a string", value)


def number(value: Any, where: str) -> None:
    """A finite JSON number (NaN and Infinity are not JSON, though Python reads them)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(where, "a number, e.g. 0.7", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _wrong(where, "a finite number", value)


def whole(value: Any, where: str, low: int = -(2**63), high: int = 2**63 - 1) -> None:
    """An integer (or an integral float such as 10.0) from ``low`` to ``high``."""
    ok = not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    )
    if not ok or not low <= value <= high:
        wanted = f"a whole number from {low} to {high}"
        if low == 0 and high == MAX_TOKENS:
            wanted = f"a whole number of tokens from 0 to {MAX_TOKENS:,}, e.g. 1024"
        raise _wrong(where, wanted, value)


def tokens(value: Any, where: str) -> None:
    """A token count: budgets, quotas and estimates all read these."""
    whole(value, where, 0, MAX_TOKENS)


def count(value: Any, where: str) -> None:
    """A small positive count (``n``, ``candidateCount``)."""
    whole(value, where, 1, 2**31 - 1)


def obj(spec: Spec | None = None) -> Check:
    """A JSON object; its fields in ``spec`` are checked in turn."""

    def check_obj(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _wrong(where, "an object ({...})", value)
        if spec:
            check(value, spec, where + ".")

    return check_obj


def list_of(item: Check | None = None, *, hint: str = "a list ([...])") -> Check:
    """A JSON array; each item checked with ``item`` (``null`` items too)."""

    def check_list(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise _wrong(where, hint, value)
        if item is not None:
            for i, element in enumerate(value):
                item(element, f"{where}[{i}]")

    return check_list


def either(first: Check, second: Check, wanted: str) -> Check:
    """One of two shapes (``stop``: a string or a list of strings)."""

    def check_either(value: Any, where: str) -> None:
        try:
            first(value, where)
        except FieldError as one:
            try:
                second(value, where)
            except FieldError as other:
                if one.param != where:  # the value had the first shape, wrong inside
                    raise one from None
                if other.param != where:
                    raise other from None
                raise _wrong(where, wanted, value) from None

    return check_either


def text_or(parts: Check, wanted: str) -> Check:
    """A string, or a list of content parts (the usual shape of ``content``)."""

    def check_content(value: Any, where: str) -> None:
        if not isinstance(value, str):
            if not isinstance(value, list):
                raise _wrong(where, wanted, value)
            parts(value, where)

    return check_content


# The fields, per dialect -----------------------------------------------------

STRINGS = list_of(string, hint="a list of strings")
_generation_config = obj(
    {
        "maxOutputTokens": tokens,
        "max_output_tokens": tokens,
        "candidateCount": count,
        "candidate_count": count,
        "temperature": number,
        "topP": number,
        "top_p": number,
        "topK": number,
        "top_k": number,
        "stopSequences": STRINGS,
        "stop_sequences": STRINGS,
        "thinkingConfig": obj({"thinkingBudget": whole}),
        "thinking_config": obj({"thinking_budget": whole}),
    }
)
# Read from a body of any dialect (capacity and budget estimates look for the output
# limit under every dialect's spelling), so typed in every dialect.
ESTIMATED: dict[str, Check] = {
    "max_tokens": tokens,
    "max_completion_tokens": tokens,
    "max_output_tokens": tokens,
    "generationConfig": _generation_config,
    "generation_config": _generation_config,
}
PART = obj({"type": string, "text": string})
PARTS = list_of(PART, hint="a list of content parts")
SAMPLING: dict[str, Check] = {
    **ESTIMATED,
    "temperature": number,
    "top_p": number,
    "stream": boolean,
    "metadata": obj(),
    "tools": list_of(obj(), hint="a list of tool objects"),
}

_chat_message = obj(
    {
        "role": string,
        "content": text_or(PARTS, "a string or a list of content parts"),
        "name": string,
        "tool_calls": list_of(obj({"id": string, "type": string, "function": obj()})),
        "tool_call_id": string,
    }
)
OPENAI_CHAT: Spec = {
    **SAMPLING,
    "messages": list_of(_chat_message, hint="a list of message objects"),
    "stream_options": obj({"include_usage": boolean}),
    "max_tokens": tokens,
    "max_completion_tokens": tokens,
    "n": count,
    "seed": whole,
    "presence_penalty": number,
    "frequency_penalty": number,
    "logprobs": boolean,
    "top_logprobs": tokens,
    "logit_bias": obj(),
    "stop": either(string, STRINGS, "a string or a list of strings"),
    "tool_choice": either(string, obj(), 'a string ("auto") or an object'),
    "parallel_tool_calls": boolean,
    "response_format": obj({"type": string}),
    "functions": list_of(obj()),
    "modalities": STRINGS,
    "user": string,
    "reasoning_effort": string,
    "store": boolean,
}

_responses_item = obj(
    {
        "role": string,
        "type": string,
        "content": text_or(PARTS, "a string or a list of content parts"),
    }
)
OPENAI_RESPONSES: Spec = {
    **SAMPLING,
    "input": text_or(list_of(_responses_item), "a string or a list of input items"),
    "instructions": string,
    "max_output_tokens": tokens,
    "max_tool_calls": tokens,
    "top_logprobs": tokens,
    "stream_options": obj(),
    "tool_choice": either(string, obj(), 'a string ("auto") or an object'),
    "parallel_tool_calls": boolean,
    "previous_response_id": string,
    "include": STRINGS,
    "reasoning": obj({"effort": string}),
    "text": obj({"format": obj()}),
    "store": boolean,
    "background": boolean,
    "user": string,
}

_anthropic_message = obj(
    {"role": string, "content": text_or(PARTS, "a string or a list of content blocks")}
)
ANTHROPIC: Spec = {
    **SAMPLING,
    "messages": list_of(_anthropic_message, hint="a list of message objects"),
    "system": text_or(PARTS, "a string or a list of text blocks"),
    "max_tokens": tokens,
    "top_k": tokens,
    "stop_sequences": STRINGS,
    "tool_choice": obj({"type": string}),
    "thinking": obj({"type": string, "budget_tokens": tokens}),
}

_gemini_content = obj({"role": string, "parts": list_of(obj({"text": string}))})
GEMINI: Spec = {
    **ESTIMATED,
    "contents": list_of(_gemini_content, hint="a list of content objects"),
    "systemInstruction": either(string, _gemini_content, "a content object"),
    "system_instruction": either(string, _gemini_content, "a content object"),
    "generationConfig": _generation_config,
    "generation_config": _generation_config,
    "tools": list_of(obj(), hint="a list of tool objects"),
    "toolConfig": obj(),
    "tool_config": obj(),
    "safetySettings": list_of(obj()),
    "safety_settings": list_of(obj()),
    "cachedContent": string,
    "cached_content": string,
}
