"""Issue 16: translation never changes meaning silently.

Each numbered case of the issue is a regression test here: a field is sent
faithfully, mapped by a documented lossless equivalent, omitted *and named*
(``Translated.omitted``, sent to the client as ``X-Tollhouse-Translation-Omitted``),
or the candidate is skipped (:class:`Untranslatable`) with the reason named.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.translate.streams import events, translate
from tollhouse.translate import Untranslatable, repair_native, translate_request_noted
from tollhouse.translate.anthropic import thinking_conflict, without_thinking
from tollhouse.translate.capabilities import EFFORTS, capabilities, nearest_effort
from tollhouse.translate.codec import omitted_header


def noted(
    source: str, target: str, payload: dict[str, Any], model: str
) -> tuple[dict[str, Any], tuple[str, ...]]:
    done = translate_request_noted(source, target, payload, model=model, stream=False)
    return done.body, done.omitted


def openai(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": messages, **extra}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def gemini(*turns: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"contents": list(turns), **extra}


def gemini_user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


SAMPLING = {
    "temperature": 0.2,
    "top_p": 0.9,
    "seed": 7,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
}


# --- item 1: sampling settings


def test_sampling_reaches_anthropic_models_that_take_it() -> None:
    body, omitted = noted(
        "openai-chat", "anthropic", openai([user("hi")], **SAMPLING), "claude-3-7"
    )
    assert (body["temperature"], body["top_p"]) == (0.2, 0.9)
    assert omitted == (
        "seed (claude-3-7 does not take it)",
        "presence_penalty (claude-3-7 does not take it)",
        "frequency_penalty (claude-3-7 does not take it)",
    )


def test_claude_4_5_gets_temperature_but_not_top_p_with_it() -> None:
    body, omitted = noted(
        "openai-chat",
        "anthropic",
        openai([user("hi")], temperature=0.2, top_p=0.9),
        "claude-sonnet-4-5",
    )
    assert body["temperature"] == 0.2 and "top_p" not in body
    assert omitted == ("top_p (claude-sonnet-4-5 does not take it together with temperature)",)


def test_newest_claude_gets_no_sampling_and_says_so() -> None:
    body, omitted = noted(
        "openai-chat", "anthropic", openai([user("hi")], temperature=0.2), "claude-opus-4-8"
    )
    assert "temperature" not in body
    assert omitted == ("temperature (claude-opus-4-8 does not take it)",)


def test_gemini_top_k_reaches_anthropic() -> None:
    payload = gemini(gemini_user("hi"), generationConfig={"topK": 40, "temperature": 0.5})
    body, omitted = noted("gemini", "anthropic", payload, "claude-haiku-4-5")
    assert (body["top_k"], body["temperature"]) == (40, 0.5)
    assert omitted == ()


def test_thinking_claude_takes_only_top_p() -> None:
    payload = openai([user("hi")], temperature=0.2, reasoning_effort="low")
    body, omitted = noted("openai-chat", "anthropic", payload, "claude-opus-4-6")
    assert "temperature" not in body and body["thinking"] == {"type": "adaptive"}
    assert omitted == ("temperature (claude-opus-4-6 does not take it with thinking on)",)


def test_openai_reasoning_models_get_no_temperature_and_say_so() -> None:
    payload = gemini(gemini_user("hi"), generationConfig={"temperature": 0.5, "topK": 3})
    body, omitted = noted("gemini", "openai-chat", payload, "gpt-5.5")
    assert "temperature" not in body
    assert omitted == (
        "temperature (gpt-5.5 does not take it)",
        "top_k (gpt-5.5 does not take it)",
    )
    body, omitted = noted("gemini", "openai-chat", payload, "gpt-4.1")
    assert body["temperature"] == 0.5 and omitted == ("top_k (gpt-4.1 does not take it)",)


# --- item 2: tool-result error flags; item 3: multi-part results


def _anthropic_result(content: Any, is_error: bool) -> dict[str, Any]:
    call = {"type": "tool_use", "id": "t1", "name": "weather", "input": {}}
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": "t1", "content": content}
    if is_error:
        result["is_error"] = True
    return {
        "model": "claude",
        "max_tokens": 10,
        "messages": [
            user("weather?"),
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [result]},
        ],
    }


def test_an_error_result_reads_as_one_to_openai() -> None:
    body, _ = noted("anthropic", "openai-chat", _anthropic_result("city unknown", True), "gpt-4o")
    assert body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "t1",
        "content": "Error: city unknown",
    }


def test_a_gemini_error_object_stays_an_error() -> None:
    payload = gemini(
        gemini_user("weather?"),
        {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {}}}]},
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "weather", "response": {"error": {"code": 4}}}}
            ],
        },
    )
    body, _ = noted("gemini", "openai-chat", payload, "gpt-4o")
    assert body["messages"][-1]["content"] == 'Error: {"code": 4}'
    back, _ = noted("gemini", "anthropic", payload, "claude-3-7")
    assert back["messages"][-1]["content"][0]["is_error"] is True


PARTS = [{"type": "text", "text": "Paris: 18C"}, {"type": "text", "text": "Lyon: 21C"}]


def test_multi_part_results_keep_their_boundaries() -> None:
    body, _ = noted("anthropic", "openai-chat", _anthropic_result(PARTS, False), "gpt-4o")
    assert body["messages"][-1]["content"] == "Paris: 18C\n\nLyon: 21C"
    body, _ = noted("anthropic", "gemini", _anthropic_result(PARTS, False), "gemini-2.5-flash")
    response = body["contents"][-1]["parts"][0]["functionResponse"]["response"]
    assert response == {"output": "Paris: 18C\n\nLyon: 21C"}
    tool = {"role": "tool", "tool_call_id": "c", "content": PARTS}
    call = {"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    payload = openai([user("w?"), {"role": "assistant", "tool_calls": [call]}, tool])
    body, _ = noted("openai-chat", "anthropic", payload, "claude-3-7")
    assert body["messages"][-1]["content"][0]["content"] == PARTS  # Anthropic takes parts


# --- item 4: safetySettings


def test_relaxed_safety_settings_are_omitted_by_name() -> None:
    relaxed = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    _, omitted = noted(
        "gemini", "openai-chat", gemini(gemini_user("hi"), safetySettings=relaxed), "gpt-4o"
    )
    assert omitted == ("safetySettings (relaxed filters; the target applies its own)",)


@pytest.mark.parametrize("target", ["openai-chat", "anthropic"])
def test_stricter_safety_settings_skip_the_candidate(target: str) -> None:
    strict = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]
    with pytest.raises(Untranslatable, match="safetySettings BLOCK_LOW_AND_ABOVE"):
        noted("gemini", target, gemini(gemini_user("hi"), safetySettings=strict), "m")


# --- item 5: failed Gemini generations, streamed (the plain case is in test_responses)


@pytest.mark.parametrize("client", ["openai-chat", "anthropic"])
def test_a_failed_gemini_stream_ends_in_an_error_event(client: str) -> None:
    chunk = {"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}]}
    stream = b'data: {"candidates":[{"content":{"parts":[{"text":"Hm"}]}}]}\r\n\r\n'
    stream += b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
    out = events(translate(client, "gemini", [stream]))
    last = out[-1][1]
    assert "MALFORMED_FUNCTION_CALL" in str(last)
    assert "error" in last
    text = str(out)
    assert "end_turn" not in text and '"stop"' not in text and "[DONE]" not in text


# --- item 6: thinking across a fallback and back


CALL = {"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}
LOOP = [user("w?"), {"role": "assistant", "tool_calls": [CALL]}]


def test_a_foreign_tool_loop_goes_to_claude_without_thinking_named() -> None:
    tool = {"role": "tool", "tool_call_id": "c", "content": "sunny"}
    payload = openai([*LOOP, tool], reasoning_effort="high")
    body, omitted = noted("openai-chat", "anthropic", payload, "claude-opus-4-8")
    assert body["thinking"] == {"type": "disabled"}
    assert omitted == ("thinking for this tool loop (its tool call was not made by anthropic)",)
    fresh, omitted = noted(
        "openai-chat", "anthropic", openai([user("w?")], reasoning_effort="high"), "claude-opus-4-8"
    )
    assert fresh["thinking"] == {"type": "adaptive"} and omitted == ()


def _native(assistant: list[dict[str, Any]]) -> dict[str, Any]:
    result = {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 2000,
        "thinking": {"type": "adaptive"},
        "messages": [
            user("w?"),
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": [result]},
        ],
    }


USE = {"type": "tool_use", "id": "t1", "name": "w", "input": {}}


def test_a_native_tool_loop_made_by_a_fallback_turns_thinking_off() -> None:
    """The fallback's tool turn has no (signed) thinking block: Anthropic would 400."""
    assert thinking_conflict(_native([USE]))
    thought = {"type": "thinking", "thinking": "hm", "signature": "sig"}
    assert not thinking_conflict(_native([thought, USE]))
    off = _native([USE]) | {"thinking": {"type": "disabled"}}
    assert not thinking_conflict(off)
    payload, note = without_thinking(_native([USE]))
    assert payload["thinking"] == {"type": "disabled"} and "another provider" in note
    repaired = repair_native("anthropic", _native([USE]))
    assert repaired.body["thinking"] == {"type": "disabled"} and repaired.omitted == (note,)
    native = _native([thought, USE])
    assert repair_native("anthropic", native).body is native
    assert repair_native("openai-chat", native).omitted == ()


# --- item 7: reasoning efforts and thinking modes the model takes


@pytest.mark.parametrize(
    ("model", "sent", "omitted"),
    [
        ("gpt-5.5", "none", ()),
        ("gpt-5", "minimal", ("reasoning_effort none (sent as minimal, the nearest gpt-5 takes)",)),
        ("o3", "low", ("reasoning_effort none (sent as low, the nearest o3 takes)",)),
        ("gpt-4o", None, ()),
    ],
)
def test_reasoning_effort_none_only_to_models_that_take_it(
    model: str, sent: str | None, omitted: tuple[str, ...]
) -> None:
    payload = {"model": "claude", "max_tokens": 9, "messages": [user("hi")]}
    payload["thinking"] = {"type": "disabled"}
    body, told = noted("anthropic", "openai-chat", payload, model)
    assert body.get("reasoning_effort") == sent
    assert told == omitted


def test_adaptive_thinking_only_to_models_that_have_it() -> None:
    payload = openai([user("hi")], reasoning_effort="medium", max_completion_tokens=20000)
    body, omitted = noted("openai-chat", "anthropic", payload, "claude-sonnet-4-5")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert "output_config" not in body and omitted == ()
    body, omitted = noted("openai-chat", "anthropic", payload, "claude-3-5-haiku-latest")
    assert "thinking" not in body
    assert omitted == ("thinking (claude-3-5-haiku-latest does not think)",)
    body, _ = noted("openai-chat", "anthropic", payload, "claude-opus-4-8")
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "medium"}


def test_gemini_models_that_always_think_get_the_least_budget_named() -> None:
    payload = openai([user("hi")], reasoning_effort="none")
    body, omitted = noted("openai-chat", "gemini", payload, "gemini-2.5-pro")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 128}
    assert omitted == ("reasoning none (gemini-2.5-pro always thinks: the least budget was sent)",)
    body, omitted = noted("openai-chat", "gemini", payload, "gemini-2.5-flash")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    assert omitted == ()


def test_thinking_budgets_fit_the_model() -> None:
    payload = openai([user("hi")], reasoning_effort="xhigh")
    body, omitted = noted("openai-chat", "gemini", payload, "gemini-2.5-flash")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}
    assert omitted == ("thinking budget 32768 (sent as 24576, the most gemini-2.5-flash takes)",)
    short = openai([user("hi")], reasoning_effort="low", max_completion_tokens=500)
    body, omitted = noted("openai-chat", "anthropic", short, "claude-sonnet-4-5")
    assert body["thinking"] == {"type": "disabled"}
    assert omitted == ("thinking (max_tokens 500 leaves no room for a thinking budget)",)


def test_a_forced_tool_turns_claude_thinking_off_named() -> None:
    tool = {"type": "function", "function": {"name": "w", "parameters": {}}}
    payload = openai([user("hi")], tools=[tool], tool_choice="required", reasoning_effort="low")
    body, omitted = noted("openai-chat", "anthropic", payload, "claude-opus-4-8")
    assert body["thinking"] == {"type": "disabled"}
    assert omitted == ("thinking (anthropic refuses it when a tool call is forced)",)


# --- the minor ones


def test_one_named_speaker_is_omitted_by_name_several_skip() -> None:
    one = openai([{"role": "user", "content": "hi", "name": "ann"}])
    _, omitted = noted("openai-chat", "anthropic", one, "claude-3-7")
    assert omitted == ("message name (one speaker)",)
    two = openai(
        [
            {"role": "user", "content": "hi", "name": "ann"},
            {"role": "user", "content": "yo", "name": "bob"},
        ]
    )
    with pytest.raises(Untranslatable, match="several named speakers"):
        noted("openai-chat", "gemini", two, "gemini-2.5-flash")


def test_strict_schemas_stay_strict() -> None:
    tool = {"type": "function", "function": {"name": "w", "parameters": {}, "strict": True}}
    payload = openai([user("hi")], tools=[tool])
    body, omitted = noted("openai-chat", "anthropic", payload, "claude-3-7")
    assert body["tools"][0]["strict"] is True and omitted == ()
    body, omitted = noted("openai-chat", "gemini", payload, "gemini-2.5-flash")
    assert omitted == ("strict tool schemas (Gemini function calling has no strict mode)",)
    back, _ = noted(
        "anthropic", "openai-chat", noted("openai-chat", "anthropic", payload, "c")[0], "gpt-4o"
    )
    assert back["tools"][0]["function"]["strict"] is True


def test_a_trailing_assistant_message_is_no_prefill() -> None:
    payload = openai([user("hi"), {"role": "assistant", "content": "Sure, "}])
    with pytest.raises(Untranslatable, match="trailing assistant message"):
        noted("openai-chat", "anthropic", payload, "claude-3-7")
    prefill = {"model": "c", "max_tokens": 5, "messages": [user("hi"), payload["messages"][1]]}
    with pytest.raises(Untranslatable, match="assistant prefill"):
        noted("anthropic", "openai-chat", prefill, "gpt-4o")


def test_unknown_fields_are_named_harmless_ones_are_not() -> None:
    payload = openai([user("hi")], store=True, metadata={"k": "v"}, verbosity="low", brand_new=1)
    _, omitted = noted("openai-chat", "anthropic", payload, "claude-3-7")
    assert omitted == ("verbosity", "brand_new")
    config = {"responseMimeType": "text/plain", "mediaResolution": "MEDIA_RESOLUTION_LOW"}
    g = gemini(gemini_user("hi"), generationConfig=config, labels={"a": "b"}, brandNew=1)
    _, omitted = noted("gemini", "openai-chat", g, "gpt-4o")
    assert omitted == ("brandNew", "generationConfig.mediaResolution")


def test_the_header_value_is_one_bounded_ascii_line() -> None:
    value = omitted_header(("a\nb", "café", "x" * 2000))
    assert value.isascii() and "\n" not in value and len(value) == 1000


# --- the capability table


@pytest.mark.parametrize(
    ("dialect", "model", "sampling", "efforts", "thinking"),
    [
        ("openai-chat", "gpt-4o-mini", True, (), "none"),
        ("openai-chat", "gpt-5", False, ("minimal", "low", "medium", "high"), "none"),
        (
            "openai-chat",
            "gpt-5-mini-2025-08-07",
            False,
            ("minimal", "low", "medium", "high"),
            "none",
        ),
        ("openai-chat", "gpt-5.1-codex", False, ("none", "low", "medium", "high"), "none"),
        ("openai-chat", "gpt-5.5", False, ("none", "low", "medium", "high", "xhigh"), "none"),
        ("anthropic", "claude-opus-4-20250514", True, (), "budget"),
        ("anthropic", "claude-sonnet-4-6", True, ("low", "medium", "high"), "adaptive"),
        (
            "anthropic",
            "claude-opus-4-8",
            False,
            ("low", "medium", "high", "xhigh", "max"),
            "adaptive",
        ),
        ("anthropic", "claude-3-5-haiku-latest", True, (), "none"),
        ("gemini", "models/gemini-2.0-flash", True, (), "none"),
        ("gemini", "gemini-2.5-flash", True, (), "budget"),
    ],
)
def test_capabilities_table(
    dialect: str, model: str, sampling: bool, efforts: tuple[str, ...], thinking: str
) -> None:
    caps = capabilities(dialect, model)
    assert ("temperature" in caps.sampling) is sampling
    assert caps.efforts == efforts
    assert caps.thinking == thinking


def test_nearest_effort_prefers_more_thinking_on_a_tie() -> None:
    assert nearest_effort("medium", ("low", "high")) == "high"
    assert nearest_effort("max", ("low", "medium", "high", "xhigh")) == "xhigh"
    assert nearest_effort("none", ("minimal", "low")) == "minimal"
    assert all(nearest_effort(e, ()) == e for e in EFFORTS)


def test_every_table_row_speaks_the_neutral_vocabulary() -> None:
    from tollhouse.translate.capabilities import _TABLE, SAMPLING

    for dialect, rows in _TABLE.items():
        assert "" in rows, f"{dialect} has no default row"
        for prefix, caps in rows.items():
            assert caps.sampling <= SAMPLING, prefix
            assert set(caps.efforts) <= set(EFFORTS), prefix
            assert list(caps.efforts) == sorted(caps.efforts, key=EFFORTS.index), prefix
            assert set(caps.exclusive) <= caps.sampling, prefix
            assert caps.max_budget is None or caps.thinking == "budget", prefix
