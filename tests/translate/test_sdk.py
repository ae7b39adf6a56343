"""What translation writes is what each official SDK parses: bodies, streams, errors.

A tiny aiohttp server replays the translated bytes; the real ``openai``,
``anthropic`` and ``google-genai`` clients read them as they would a provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.translate.replay import replay_app, serve
from tests.translate.samples import ANTHROPIC_RESPONSE, GEMINI_RESPONSE, OPENAI_RESPONSE
from tests.translate.streams import STREAMS, sse, through, translate
from tollhouse.testing import BackgroundServer
from tollhouse.translate import error_translate, translate_response

DIALECTS = ("openai-chat", "anthropic", "gemini")
DIRECTIONS = [(s, t) for s in DIALECTS for t in DIALECTS if s != t]
RESPONSES = {
    "openai-chat": OPENAI_RESPONSE,
    "anthropic": ANTHROPIC_RESPONSE,
    "gemini": GEMINI_RESPONSE,
}


@pytest.fixture(scope="module")
def replay() -> Iterator[BackgroundServer]:
    with BackgroundServer(replay_app) as server:
        yield server


def openai_client(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)


def anthropic_client(server: BackgroundServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0)


def gemini_client(server: BackgroundServer) -> genai.Client:
    options = types.HttpOptions(base_url=server.url, api_version="v1beta")
    return genai.Client(api_key="k", http_options=options)


MESSAGES: Any = [{"role": "user", "content": "Weather in Rome?"}]


def openai_answer(server: BackgroundServer, stream: bool) -> Any:
    client = openai_client(server)
    if not stream:
        return client.chat.completions.create(model="m", messages=MESSAGES)
    with client.chat.completions.stream(
        model="m", messages=MESSAGES, stream_options={"include_usage": True}
    ) as events:
        return events.get_final_completion()


def anthropic_answer(server: BackgroundServer, stream: bool) -> Any:
    client = anthropic_client(server)
    if not stream:
        return client.messages.create(model="m", max_tokens=10, messages=MESSAGES)
    with client.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as events:
        return events.get_final_message()


def gemini_answer(server: BackgroundServer, stream: bool) -> Any:
    client = gemini_client(server)
    if not stream:
        return [client.models.generate_content(model="m", contents="Weather in Rome?")]
    return list(client.models.generate_content_stream(model="m", contents="Weather in Rome?"))


def check_openai(completion: Any) -> None:
    choice = completion.choices[0]
    assert choice.message.content == "Checking."
    call = choice.message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Rome"},
    )
    assert choice.finish_reason == "tool_calls"
    assert completion.usage.prompt_tokens == 120
    assert completion.usage.prompt_tokens_details.cached_tokens == 100
    assert completion.usage.completion_tokens == 30


def check_anthropic(message: Any) -> None:
    text, tool = message.content
    assert text.text == "Checking."
    assert (tool.type, tool.name, tool.input) == ("tool_use", "get_weather", {"city": "Rome"})
    assert message.stop_reason == "tool_use"
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (20, 100, 30)


def check_gemini(chunks: list[Any]) -> None:
    parts = [part for chunk in chunks for part in (chunk.parts or [])]
    assert "".join(p.text for p in parts if p.text) == "Checking."
    calls = [p.function_call for p in parts if p.function_call]
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Rome"})]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    usage = chunks[-1].usage_metadata
    assert (usage.prompt_token_count, usage.cached_content_token_count) == (120, 100)
    assert (usage.candidates_token_count, usage.thoughts_token_count) == (20, 10)


ANSWER = {"openai-chat": openai_answer, "anthropic": anthropic_answer, "gemini": gemini_answer}
CHECK = {"openai-chat": check_openai, "anthropic": check_anthropic, "gemini": check_gemini}


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_sdk_reads_a_translated_stream(replay: BackgroundServer, source: str, target: str) -> None:
    serve(replay, translate(source, target, [STREAMS[target]]), stream=True)
    CHECK[source](ANSWER[source](replay, stream=True))


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_sdk_reads_a_translated_body(replay: BackgroundServer, source: str, target: str) -> None:
    body = translate_response(source, target, RESPONSES[target], model="m")
    serve(replay, json.dumps(body).encode())
    CHECK[source](ANSWER[source](replay, stream=False))


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_translated_bodies_validate_as_sdk_types(source: str, target: str) -> None:
    body = translate_response(source, target, RESPONSES[target], model="m")
    if source == "openai-chat":
        check_openai(openai.types.chat.ChatCompletion.model_validate(body))
    elif source == "anthropic":
        check_anthropic(anthropic.types.Message.model_validate(body))
    else:
        check_gemini([types.GenerateContentResponse.model_validate(body)])


UPSTREAM_RATE_LIMITS = {
    "openai-chat": {
        "error": {
            "message": "slow down",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    },
    "anthropic": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
    "gemini": {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}},
}


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_sdk_raises_its_rate_limit_error_for_a_translated_error(
    replay: BackgroundServer, source: str, target: str
) -> None:
    raw = json.dumps(UPSTREAM_RATE_LIMITS[target]).encode()
    serve(replay, error_translate(source, target, 429, raw), status=429)
    expected: Any = {
        "openai-chat": openai.RateLimitError,
        "anthropic": anthropic.RateLimitError,
        "gemini": genai_errors.ClientError,
    }[source]
    with pytest.raises(expected) as raised:
        ANSWER[source](replay, stream=False)
    if source == "gemini":
        assert (raised.value.code, raised.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert "slow down" in str(raised.value)


MIDSTREAM_ERRORS = {
    "openai-chat": sse(
        {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
    ),
    "anthropic": sse(
        {"type": "error", "error": {"type": "overloaded_error", "message": "boom"}}, event="error"
    ),
    "gemini": sse(
        {"error": {"code": 503, "message": "boom", "status": "UNAVAILABLE"}}, newline="\r\n"
    ),
}


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_sdk_raises_for_a_translated_midstream_error(
    replay: BackgroundServer, source: str, target: str
) -> None:
    upstream = [through(STREAMS[target], b"Check"), MIDSTREAM_ERRORS[target]]
    serve(replay, translate(source, target, upstream), stream=True)
    expected: Any = {
        "openai-chat": openai.APIError,
        "anthropic": anthropic.APIStatusError,
        "gemini": genai_errors.APIError,
    }[source]
    with pytest.raises(expected, match="boom"):
        ANSWER[source](replay, stream=True)
