"""Anthropic Messages, driven with the official SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from tollhouse.simulator import Simulator

from ..helpers import long_text, post, sse_events

MODEL = "claude-sonnet-4-6"
HELLO: list[Any] = [{"role": "user", "content": "hello there"}]


def test_plain_message_shape_and_usage(sim: Simulator, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=100, system="be brief", messages=HELLO)
    assert message.id.startswith("msg_01") and message.type == "message"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.endswith("pen.")
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 16)
    assert usage.cache_creation_input_tokens == usage.cache_read_input_tokens == 0
    [bill] = sim.bills()
    assert bill["id"] == message.id and bill["dialect"] == "anthropic"
    assert bill["auth"] == "bearer"  # the 2.x SDK sends its api_key as a bearer token


def test_stream_event_sequence(sim: Simulator) -> None:
    raw = post(
        f"{sim.url}/v1/messages",
        {"model": MODEL, "max_tokens": 100, "messages": HELLO, "stream": True},
    )
    events = sse_events(raw.body)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(json.loads(data)["type"] == name for name, data in events)
    start = json.loads(events[0][1])["message"]["usage"]
    delta = json.loads(events[-2][1])["usage"]
    assert start["input_tokens"] == 3 and start["output_tokens"] == 1
    assert delta["output_tokens"] == 16


def test_stream_helper_sees_cumulative_usage(sim: Simulator, claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.usage.output_tokens == 16 and final.usage.input_tokens == 3
    [bill] = sim.bills()
    assert bill["id"] == final.id and bill["stream"] and bill["complete"]


def test_thinking_is_output_and_billed_as_reasoning(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    message = claude.messages.create(
        model=MODEL, max_tokens=2048, messages=HELLO, thinking=thinking
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.usage.output_tokens == 48
    with claude.messages.stream(
        model=MODEL, max_tokens=2048, messages=HELLO, thinking=thinking
    ) as s:
        final = s.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].signature
    assert final.usage.output_tokens == 48
    assert [b["usage"]["reasoning_tokens"] for b in sim.bills()] == [32, 32]


def test_streamed_thinking_blocks_on_the_wire(sim: Simulator) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 2048,
        "messages": HELLO,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    events = [json.loads(data) for _, data in sse_events(post(f"{sim.url}/v1/messages", body).body)]
    deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == ["thinking_delta", "signature_delta", *["text_delta"] * 4]
    start, final = events[0]["message"]["usage"], events[-2]["usage"]
    assert start["output_tokens"] == 1 and "output_tokens_details" not in start
    assert final["output_tokens"] == 48
    assert final["output_tokens_details"] == {"thinking_tokens": 32}


def test_max_tokens_stop_reason(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=4, messages=HELLO)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 4


def cached_system(ttl: str | None = None) -> list[Any]:
    control: dict[str, str] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return [{"type": "text", "text": long_text(2000), "cache_control": control}]


def test_cache_write_then_read(sim: Simulator, claude: anthropic.Anthropic) -> None:
    system = cached_system()
    first = claude.messages.create(model=MODEL, max_tokens=100, system=system, messages=HELLO)
    second = claude.messages.create(model=MODEL, max_tokens=100, system=system, messages=HELLO)
    assert first.usage.cache_creation_input_tokens == 2000
    assert (
        first.usage.cache_creation and first.usage.cache_creation.ephemeral_5m_input_tokens == 2000
    )
    assert first.usage.input_tokens == 3 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == 2000
    assert second.usage.cache_creation_input_tokens == 0 and second.usage.input_tokens == 3
    written, read = sim.bills()
    assert (
        written["usage"]["input_tokens"] == 2003 and written["usage"]["cache_write_tokens"] == 2000
    )
    assert read["usage"]["cached_input_tokens"] == 2000 and read["usage"]["cache_write_tokens"] == 0


def test_one_hour_cache_write(sim: Simulator, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=MODEL, max_tokens=100, system=cached_system("1h"), messages=HELLO
    )
    assert message.usage.cache_creation
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 2000
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 0
    usage = sim.bills()[0]["usage"]
    assert usage["cache_write_tokens"] == usage["cache_write_1h_tokens"] == 2000


def test_streamed_cache_counts_are_in_message_start(sim: Simulator) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "system": cached_system(),
        "messages": HELLO,
        "stream": True,
    }
    post(f"{sim.url}/anthropic/v1/messages", body)
    events = sse_events(post(f"{sim.url}/anthropic/v1/messages", body).body)
    usage = json.loads(events[0][1])["message"]["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (3, 2000)


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    count = claude.messages.count_tokens(model=MODEL, system=cached_system(), messages=HELLO)
    assert count.input_tokens == 2003


@pytest.mark.parametrize(
    ("spec", "error", "status", "kind"),
    [
        ("rate_limit", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
        ("server_error", anthropic.InternalServerError, 500, "api_error"),
        ("not_found", anthropic.NotFoundError, 404, "not_found_error"),
        ("insufficient_quota", anthropic.BadRequestError, 400, "invalid_request_error"),
    ],
)
def test_faults_raise_the_sdk_errors(
    sim: Simulator,
    claude: anthropic.Anthropic,
    spec: str,
    error: type[anthropic.APIStatusError],
    status: int,
    kind: str,
) -> None:
    sim.program(spec)
    with pytest.raises(error) as caught:
        claude.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert caught.value.status_code == status
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert body["request_id"] == caught.value.response.headers["request-id"]


def test_rate_limit_headers(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.program("rate_limit,retry_after=7")
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "7"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"].endswith("Z")


def test_stream_error_event_after_a_200(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.program("stream_error=4")
    seen = []
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        claude.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert seen[:3] == ["message_start", "content_block_start", "content_block_delta"]
    [bill] = sim.bills()
    assert bill["status"] == 200 and bill["error"] == "stream_error"
    assert bill["usage"]["output_tokens"] == 4 and not bill["complete"]


def test_cut_stream(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.program("cut=5")
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)),
        claude.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream,
    ):
        for _ in stream:
            pass
    [bill] = sim.bills()
    assert bill["error"] == "cut" and bill["usage"]["output_tokens"] == 8


def test_missing_max_tokens_is_a_400(sim: Simulator) -> None:
    raw = post(f"{sim.url}/anthropic/v1/messages", {"model": MODEL, "messages": HELLO})
    assert raw.status == 400
    assert raw.json()["error"]["type"] == "invalid_request_error"
