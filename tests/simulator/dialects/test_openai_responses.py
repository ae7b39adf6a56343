"""OpenAI Responses, driven with the official SDK."""

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
OPENING = ["response.created", "response.in_progress"]
MESSAGE = [
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 4,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def test_plain_response_shape_and_usage(sim: Simulator, openai_client: Client) -> None:
    response = openai_client("openai").responses.create(
        model="gpt-4o-mini", instructions="be brief", input="hello there"
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed"
    assert response.instructions == "be brief"
    assert response.output_text.endswith("oak pen.")
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, 16, 21)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    [bill] = sim.bills()
    assert bill["id"] == response.id and bill["dialect"] == "openai-responses"


def test_message_list_input_counts_each_item(openai_client: Client) -> None:
    items: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": "abcdabcd"}]},
        {"role": "assistant", "content": "abcd"},
        {"role": "user", "content": [{"type": "input_image", "image_url": "data:,x"}]},
    ]
    response = openai_client("openai").responses.create(model="gpt-4o-mini", input=items)
    assert response.usage and response.usage.input_tokens == 2 + 1 + 85


def test_streamed_events_in_order_with_sequence_numbers(
    sim: Simulator, openai_client: Client
) -> None:
    events = list(
        openai_client("openai").responses.create(
            model="gpt-4o-mini", input="hello there", stream=True
        )
    )
    assert [e.type for e in events] == [*OPENING, *MESSAGE, "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage and completed.response.usage.output_tokens == 16
    [bill] = sim.bills()
    assert bill["id"] == completed.response.id and bill["stream"] and bill["complete"]


def test_stream_helper_accumulates_the_final_response(openai_client: Client) -> None:
    with openai_client("openai").responses.stream(model="o3", input="hello there") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == text
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage and final.usage.output_tokens_details.reasoning_tokens == 32


def test_raw_stream_uses_event_lines_and_no_done(sim: Simulator) -> None:
    raw = post(f"{sim.url}/v1/responses", {"model": "gpt-4o-mini", "input": "hi", "stream": True})
    events = sse_events(raw.body)
    assert all(name == json.loads(data)["type"] for name, data in events)
    assert events[-1][0] == "response.completed"
    assert "[DONE]" not in raw.body.decode()


def test_reasoning_effort_adds_a_reasoning_item(sim: Simulator, openai_client: Client) -> None:
    response = openai_client("openai").responses.create(
        model="gpt-4.1", input="hello there", reasoning={"effort": "medium"}
    )
    assert response.output[0].type == "reasoning"
    assert response.usage and response.usage.output_tokens == 48
    assert sim.bills()[0]["usage"]["reasoning_tokens"] == 32


def test_reasoning_effort_none_turns_reasoning_off(openai_client: Client) -> None:
    response = openai_client("openai").responses.create(
        model="gpt-5", input="hello there", reasoning={"effort": "none"}
    )
    assert response.usage and response.usage.output_tokens_details.reasoning_tokens == 0


def test_max_output_tokens_makes_an_incomplete_response(openai_client: Client) -> None:
    client = openai_client("openai")
    response = client.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=5)
    assert response.status == "incomplete"
    assert response.incomplete_details and response.incomplete_details.reason == "max_output_tokens"
    events = list(
        client.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=5, stream=True)
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.usage and events[-1].response.usage.output_tokens == 5


def test_long_instructions_are_cached_on_repeat(sim: Simulator, openai_client: Client) -> None:
    client = openai_client("openai")
    for _ in range(2):
        response = client.responses.create(
            model="gpt-4o-mini", instructions=long_text(1500), input="hello there"
        )
    assert response.usage and response.usage.input_tokens_details.cached_tokens == 1408
    assert [b["usage"]["cached_input_tokens"] for b in sim.bills()] == [0, 1408]


def test_xai_and_openrouter_report_their_cost(sim: Simulator, openai_client: Client) -> None:
    xai = openai_client("xai").responses.create(model="grok-4", input="hi")
    raw = post(f"{sim.url}/openrouter/v1/responses", {"model": "openai/gpt-4o-mini", "input": "hi"})
    assert xai.usage is not None
    ticks = (xai.usage.model_extra or {})["cost_in_usd_ticks"]
    cost = json.loads(raw.body, parse_float=Decimal)["usage"]["cost"]
    xai_bill, openrouter_bill = sim.bills()
    assert Decimal(ticks).scaleb(-10) == Decimal(xai_bill["cost_usd"])
    assert cost == Decimal(openrouter_bill["cost_usd"])


def test_cut_stream(sim: Simulator, openai_client: Client) -> None:
    sim.program("cut=6")
    received = []
    with pytest.raises(openai.APIConnectionError):
        for event in openai_client("openai").responses.create(
            model="gpt-4o-mini", input="hi", stream=True
        ):
            received.append(event.type)
    assert received == [*OPENING, *MESSAGE[:4]]
    [bill] = sim.bills()
    assert not bill["complete"] and bill["usage"]["output_tokens"] == 8


def test_stream_error_is_a_failed_response_with_usage_so_far(
    sim: Simulator, openai_client: Client
) -> None:
    sim.program("stream_error=5")
    events = list(
        openai_client("openai").responses.create(model="gpt-4o-mini", input="hi", stream=True)
    )
    failed = events[-1]
    assert failed.type == "response.failed" and failed.sequence_number == 5
    assert failed.response.usage and failed.response.usage.output_tokens == 4
    [bill] = sim.bills()
    assert bill["usage"]["output_tokens"] == 4 and not bill["complete"]


def test_not_found_fault(sim: Simulator, openai_client: Client) -> None:
    sim.program("not_found")
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client("openai").responses.create(model="gpt-4o-mini", input="hi")
    assert caught.value.code == "model_not_found"
