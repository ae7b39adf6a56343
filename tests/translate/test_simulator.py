"""End to end against the provider simulator: translate a request from dialect A to
B, send it to the simulator's B endpoint, translate the answer back to A and let
A's official SDK read it. Usage the client sees must equal what B billed.

The simulator answers text only (never a tool call), so tool-call *answers* are
covered by the replayed streams in ``test_sdk.py``; here tool definitions and
tool history go upstream and must be accepted.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from tests.translate.replay import replay_app, serve
from tests.translate.samples import MODELS, request
from tests.translate.test_sdk import ANSWER
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.simulator.tokens import answer_pieces
from tollhouse.testing import BackgroundServer
from tollhouse.translate import (
    error_translate,
    stream_translator,
    translate_request,
    translate_response,
)

DIALECTS = ("openai-chat", "anthropic", "gemini")
DIRECTIONS = [(s, t) for s in DIALECTS for t in DIALECTS if s != t]
SIM_MODELS = {
    "openai-chat": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-6",
    "gemini": "gemini-2.5-flash",
}
ANSWER_TEXT = "".join(answer_pieces(16, 4))


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    bills = tmp_path_factory.mktemp("sim") / "bills.jsonl"
    with Simulator(SimulatorSettings(bill_path=bills)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def replay() -> Iterator[BackgroundServer]:
    with BackgroundServer(replay_app) as server:
        yield server


def endpoint(sim: Simulator, target: str, stream: bool) -> str:
    if target == "openai-chat":
        return f"{sim.url}/openai/v1/chat/completions"
    if target == "anthropic":
        return f"{sim.url}/anthropic/v1/messages"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{sim.url}/gemini/v1beta/models/{SIM_MODELS[target]}:{method}"


def post(url: str, body: dict[str, Any], fault: str | None = None) -> tuple[int, bytes]:
    call = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    call.add_header("content-type", "application/json")
    if fault:
        call.add_header("x-sim-fault", fault)
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            try:
                return response.status, response.read()
            except http.client.IncompleteRead as cut:  # the cut=N fault
                return response.status, cut.partial
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def upstream(
    sim: Simulator,
    source: str,
    target: str,
    payload: dict[str, Any],
    stream: bool,
    fault: str | None = None,
) -> tuple[int, bytes]:
    body = translate_request(source, target, payload, model=SIM_MODELS[target], stream=stream)
    return post(endpoint(sim, target, stream), body, fault)


def streamed_back(source: str, target: str, raw: bytes, include_usage: bool = True) -> bytes:
    """The upstream stream translated in small, uneven pieces, as a socket delivers it."""
    translator = stream_translator(
        source, target, model=MODELS[source], include_usage=include_usage
    )
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    return b"".join(translator.feed(piece) for piece in pieces) + translator.finish()


def seen(source: str, answer: Any) -> tuple[str, int, int, int]:
    """(text, total input, cached input, output) as the client's SDK reports them."""
    if source == "openai-chat":
        usage = answer.usage
        cached = usage.prompt_tokens_details.cached_tokens
        text = answer.choices[0].message.content
        return text, usage.prompt_tokens, cached, usage.completion_tokens
    if source == "anthropic":
        usage = answer.usage
        cached = usage.cache_read_input_tokens or 0
        total = usage.input_tokens + cached + (usage.cache_creation_input_tokens or 0)
        return "".join(b.text for b in answer.content), total, cached, usage.output_tokens
    usage = answer[-1].usage_metadata
    text = "".join(p.text for chunk in answer for p in (chunk.parts or []) if p.text)
    output = usage.candidates_token_count + (usage.thoughts_token_count or 0)
    return text, usage.prompt_token_count, usage.cached_content_token_count or 0, output


def billed(sim: Simulator) -> tuple[int, int, int]:
    usage = sim.bills()[-1]["usage"]
    return usage["input_tokens"], usage["cached_input_tokens"], usage["output_tokens"]


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_a_translated_call_round_trips_through_the_simulator(
    sim: Simulator, source: str, target: str
) -> None:
    status, raw = upstream(sim, source, target, request(source), stream=False)
    assert status == 200, raw
    body = translate_response(source, target, json.loads(raw), model=MODELS[source])
    if source == "openai-chat":
        answer: Any = openai.types.chat.ChatCompletion.model_validate(body)
    elif source == "anthropic":
        answer = anthropic.types.Message.model_validate(body)
    else:
        answer = [types.GenerateContentResponse.model_validate(body)]
    text, total, cached, output = seen(source, answer)
    assert text == ANSWER_TEXT
    assert (total, cached, output) == billed(sim)


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_a_translated_stream_round_trips_through_the_simulator(
    sim: Simulator, replay: BackgroundServer, source: str, target: str
) -> None:
    status, raw = upstream(sim, source, target, request(source), stream=True)
    assert status == 200, raw
    serve(replay, streamed_back(source, target, raw), stream=True)
    text, total, cached, output = seen(source, ANSWER[source](replay, stream=True))
    assert text == ANSWER_TEXT
    assert (total, cached, output) == billed(sim)


def long_prompt(source: str, marker: str) -> dict[str, Any]:
    system = marker + " " + "abcd" * 1500  # past the simulator's 1024-token caching floor
    if source == "anthropic":
        return {
            "model": "c",
            "max_tokens": 16,
            "system": system,
            "messages": [{"role": "user", "content": "hi"}],
        }
    return {
        "systemInstruction": {"parts": [{"text": system}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    }


@pytest.mark.parametrize(("source", "target"), [("anthropic", "gemini"), ("gemini", "openai-chat")])
def test_implicit_cache_hits_reach_the_client(sim: Simulator, source: str, target: str) -> None:
    payload = long_prompt(source, f"{source}->{target}")
    upstream(sim, source, target, payload, stream=False)
    status, raw = upstream(sim, source, target, payload, stream=False)
    assert status == 200
    body = translate_response(source, target, json.loads(raw), model=MODELS[source])
    answer = (
        anthropic.types.Message.model_validate(body)
        if source == "anthropic"
        else [types.GenerateContentResponse.model_validate(body)]
    )
    _, total, cached, output = seen(source, answer)
    assert cached > 0
    assert (total, cached, output) == billed(sim)


def test_reasoning_effort_reaches_gemini_and_its_thoughts_count_as_output(sim: Simulator) -> None:
    payload = {
        "model": "gpt-5.5",
        "messages": [{"role": "user", "content": "think"}],
        "reasoning_effort": "minimal",
    }
    status, raw = upstream(sim, "openai-chat", "gemini", payload, stream=False)
    assert status == 200
    body = translate_response("openai-chat", "gemini", json.loads(raw), model="gpt-5.5")
    usage = openai.types.chat.ChatCompletion.model_validate(body).usage
    assert usage is not None and usage.completion_tokens_details is not None
    # 16 answer tokens, 2x reasoning capped by the 512-token "minimal" budget
    assert (usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (48, 32)
    assert sim.bills()[-1]["usage"]["reasoning_tokens"] == 32


def test_a_request_without_max_tokens_gets_anthropic_s_default(sim: Simulator) -> None:
    payload = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
    status, _ = upstream(sim, "openai-chat", "anthropic", payload, stream=False)
    assert status == 200  # the simulator, like Anthropic, rejects a request without max_tokens


@pytest.mark.parametrize(
    ("source", "target", "fault", "status", "check"),
    [
        ("anthropic", "openai-chat", "insufficient_quota", 429, ("error", "type", "billing_error")),
        ("anthropic", "gemini", "rate_limit", 429, ("error", "type", "rate_limit_error")),
        ("openai-chat", "anthropic", "overloaded", 529, ("error", "type", "server_error")),
        ("openai-chat", "gemini", "not_found", 404, ("error", "code", "model_not_found")),
        ("gemini", "anthropic", "rate_limit", 429, ("error", "status", "RESOURCE_EXHAUSTED")),
        ("gemini", "openai-chat", "server_error", 500, ("error", "status", "INTERNAL")),
    ],
)
def test_simulated_upstream_errors_translate(
    sim: Simulator, source: str, target: str, fault: str, status: int, check: tuple[str, str, str]
) -> None:
    got, raw = upstream(sim, source, target, request(source), stream=False, fault=fault)
    assert got == status
    body = json.loads(error_translate(source, target, got, raw))
    outer, key, value = check
    assert body[outer][key] == value


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_simulated_midstream_errors_raise_in_the_client_sdk(
    sim: Simulator, replay: BackgroundServer, source: str, target: str
) -> None:
    status, raw = upstream(
        sim, source, target, request(source), stream=True, fault="stream_error=2"
    )
    assert status == 200
    serve(replay, streamed_back(source, target, raw), stream=True)
    expected: Any = {
        "openai-chat": openai.APIError,
        "anthropic": anthropic.APIStatusError,
        "gemini": genai_errors.APIError,
    }[source]
    with pytest.raises(expected):
        ANSWER[source](replay, stream=True)


# Frames to send before the cut: some text, never the finish.
CUTS = {"openai-chat": 3, "anthropic": 5, "gemini": 3}


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_a_cut_stream_is_not_closed_cleanly_for_the_client(
    sim: Simulator, source: str, target: str
) -> None:
    fault = f"cut={CUTS[target]}"
    status, raw = upstream(sim, source, target, request(source), stream=True, fault=fault)
    assert status == 200
    out = streamed_back(source, target, raw)
    assert b"sim ask" in out, "what arrived before the cut still goes out"
    assert b"[DONE]" not in out and b"message_stop" not in out and b"finishReason" not in out
