"""OpenAI Chat Completions, driven with the official SDK (and raw HTTP for wire details)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import openai
import pytest

from tollhouse.simulator import Simulator

from ..helpers import long_text, post, sse_events

Client = Callable[[str], openai.OpenAI]
HELLO: list[Any] = [{"role": "user", "content": "hello there"}]  # 11 bytes: 3 tokens


def test_plain_completion_shape_and_usage(sim: Simulator, openai_client: Client) -> None:
    messages = [{"role": "system", "content": "be brief"}, *HELLO]  # 2 + 3 tokens
    result = openai_client("openai").chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert result.id.startswith("chatcmpl-")
    assert result.object == "chat.completion"
    assert result.choices[0].finish_reason == "stop"
    assert (
        result.choices[0].message.content
        == "sim ask bot cat dew fog gum hat ink jam kit log map nut oak pen."
    )
    usage = result.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 16, 21)
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    [bill] = sim.bills()
    assert bill["id"] == result.id and bill["dialect"] == "openai-chat" and bill["complete"]
    assert bill["usage"]["input_tokens"] == 5 and bill["usage"]["output_tokens"] == 16


def test_tool_definitions_count_as_input(openai_client: Client) -> None:
    function = {"name": "lookup", "parameters": {"type": "object"}}
    tools: Any = [{"type": "function", "function": function}]
    client = openai_client("openai")
    bare = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    with_tools = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, tools=tools)
    assert bare.usage and with_tools.usage
    canonical = json.dumps(tools[0], sort_keys=True, separators=(",", ":"))
    assert with_tools.usage.prompt_tokens - bare.usage.prompt_tokens == -(-len(canonical) // 4)


def test_streaming_with_usage_sends_one_usage_chunk_last(
    sim: Simulator, openai_client: Client
) -> None:
    stream = openai_client("openai").chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("pen.") and len(text) == 64
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].choices == []
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (3, 16)
    [bill] = sim.bills()
    assert bill["id"] == chunks[0].id and bill["stream"] and bill["complete"]


def test_stream_wire_format_has_null_usage_and_done(sim: Simulator) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    raw = post(f"{sim.url}/v1/chat/completions", body)
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = sse_events(raw.body)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all("usage" in c for c in chunks)
    assert [c["usage"] is None for c in chunks] == [True] * (len(chunks) - 1) + [False]


def test_stream_without_include_usage_carries_no_usage(sim: Simulator) -> None:
    raw = post(
        f"{sim.url}/openai/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
    )
    chunks = [json.loads(data) for _, data in sse_events(raw.body)[:-1]]
    assert chunks and not any("usage" in c for c in chunks)
    assert sim.bills()[0]["usage"]["output_tokens"] == 16  # billed all the same


def test_max_tokens_truncates_with_length(sim: Simulator, openai_client: Client) -> None:
    result = openai_client("openai").chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, max_completion_tokens=3
    )
    assert result.choices[0].finish_reason == "length"
    assert result.usage and result.usage.completion_tokens == 3
    assert result.choices[0].message.content == "sim ask bot."


def test_reasoning_effort_adds_reasoning_tokens(sim: Simulator, openai_client: Client) -> None:
    result = openai_client("openai").chat.completions.create(
        model="gpt-4.1", messages=HELLO, reasoning_effort="low"
    )
    usage = result.usage
    assert usage and usage.completion_tokens_details
    assert usage.completion_tokens_details.reasoning_tokens == 32
    assert usage.completion_tokens == 48
    assert sim.bills()[0]["usage"]["reasoning_tokens"] == 32


def test_repeated_long_prompt_is_cached(sim: Simulator, openai_client: Client) -> None:
    messages = [{"role": "system", "content": long_text(2000)}, *HELLO]
    client = openai_client("openai")
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert first.usage and first.usage.prompt_tokens_details
    assert second.usage and second.usage.prompt_tokens_details
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 1920
    assert second.usage.prompt_tokens == 2003
    bills = sim.bills()
    assert [b["usage"]["cached_input_tokens"] for b in bills] == [0, 1920]
    assert Decimal(bills[1]["cost_usd"]) < Decimal(bills[0]["cost_usd"])


def test_xai_reports_cost_in_ticks_equal_to_the_bill(sim: Simulator, openai_client: Client) -> None:
    result = openai_client("xai").chat.completions.create(model="grok-4", messages=HELLO)
    assert result.usage is not None
    ticks = (result.usage.model_extra or {})["cost_in_usd_ticks"]
    [bill] = sim.bills()
    assert bill["flavor"] == "xai"
    assert isinstance(ticks, int) and ticks > 0
    assert Decimal(ticks) / Decimal(10**10) == Decimal(bill["cost_usd"])


def test_xai_streamed_usage_has_ticks_too(sim: Simulator, openai_client: Client) -> None:
    stream = openai_client("xai").chat.completions.create(
        model="grok-3-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    usage = list(stream)[-1].usage
    assert usage is not None and usage.completion_tokens_details
    assert usage.completion_tokens_details.reasoning_tokens == 32  # grok-3-mini reasons
    ticks = (usage.model_extra or {})["cost_in_usd_ticks"]
    assert Decimal(ticks).scaleb(-10) == Decimal(sim.bills()[0]["cost_usd"])


def test_openrouter_cost_is_the_exact_bill(sim: Simulator) -> None:
    raw = post(
        f"{sim.url}/openrouter/v1/chat/completions",
        {"model": "anthropic/claude-sonnet-4", "messages": HELLO},
    )
    usage = json.loads(raw.body, parse_float=Decimal)["usage"]
    [bill] = sim.bills()
    assert isinstance(usage["cost"], Decimal)
    assert usage["cost"] == Decimal(bill["cost_usd"]) > 0
    assert str(usage["cost"]) == bill["cost_usd"]


def test_compat_flavor_bills_tokens_without_cost(sim: Simulator, openai_client: Client) -> None:
    result = openai_client("compat").chat.completions.create(model="llama-3.1-8b", messages=HELLO)
    assert result.usage and result.usage.total_tokens == 19
    [bill] = sim.bills()
    assert bill["flavor"] == "compat" and bill["cost_usd"] is None


def test_unknown_model_is_served_with_null_cost(sim: Simulator, openai_client: Client) -> None:
    openai_client("openai").chat.completions.create(model="gpt-unknown-9", messages=HELLO)
    assert sim.bills()[0]["cost_usd"] is None


@pytest.mark.parametrize(
    ("spec", "error", "status", "code"),
    [
        ("rate_limit", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("insufficient_quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("server_error", openai.InternalServerError, 500, None),
        ("overloaded", openai.InternalServerError, 503, None),
        ("not_found", openai.NotFoundError, 404, "model_not_found"),
    ],
)
def test_faults_raise_the_sdk_errors(
    sim: Simulator,
    openai_client: Client,
    spec: str,
    error: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    sim.program(spec)
    with pytest.raises(error) as caught:
        openai_client("openai").chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    [bill] = sim.bills()
    assert (bill["status"], bill["error"], bill["cost_usd"]) == (status, spec, "0")
    assert bill["usage"]["output_tokens"] == 0


def test_rate_limit_headers(sim: Simulator, openai_client: Client) -> None:
    sim.program("rate_limit,retry_after=360")
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client("openai").chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "360" and headers["retry-after-ms"] == "360000"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "6m0s"
    assert caught.value.type == "requests"


def test_cut_stream_breaks_the_client_and_bills_what_was_sent(
    sim: Simulator, openai_client: Client
) -> None:
    stream = openai_client("openai").chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-sim-fault": "cut=3"},
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3  # role chunk + two 4-token deltas
    [bill] = sim.bills()
    assert not bill["complete"] and bill["error"] == "cut"
    assert bill["usage"]["output_tokens"] == 8 and bill["usage"]["input_tokens"] == 3


def test_in_band_stream_error_raises_api_error(sim: Simulator, openai_client: Client) -> None:
    sim.program("stream_error=2")
    stream = openai_client("openai").chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True
    )
    with pytest.raises(openai.APIError, match="server had an error"):
        list(stream)
    [bill] = sim.bills()
    assert bill["error"] == "stream_error" and bill["usage"]["output_tokens"] == 4
