"""Issue 17 with real Responses clients: the openai SDK's ``responses`` namespace and
the openai-agents SDK run a tool loop through a chain whose primary is down (a
simulator fault), served by the Anthropic fallback (the capture upstream, whose
canned answer calls ``get_weather``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import ACME_KEY, KEY_ENV, GatewayFactory, Harness, base_config
from tests.translate.capture import CAPTURE, CaptureState, capture_app
from tests.translate.samples import RESPONSES_TOOLS
from tests.translate.streams import sse
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

DOWN = "down-model"
FINAL = "Rome: 21C and sunny."


@pytest.fixture
def capture() -> Iterator[BackgroundServer]:
    with BackgroundServer(capture_app) as server:
        yield server


def _state(capture: BackgroundServer) -> CaptureState:
    assert capture.app is not None
    return capture.app[CAPTURE]


def _gateway(make_gateway: GatewayFactory, faults: Simulator, capture: BackgroundServer) -> Harness:
    config = base_config(faults.url)
    config["providers"].append(
        {
            "name": "cap-anthropic",
            "kind": "anthropic",
            "base_url": capture.url + "/anthropic",
            "api_key_env": KEY_ENV,
        }
    )
    config["models"] = {"smart": {"chain": [f"openai/{DOWN}", "cap-anthropic/claude-sonnet-4-5"]}}
    config["capacity"] = {"max_attempts": 1}
    faults.program("server_error", count=50, model=DOWN)
    return make_gateway(config)


def _final_answer() -> tuple[bytes, bytes]:
    """Claude's last turn: text only, whole and streamed."""
    usage = {"input_tokens": 40, "output_tokens": 8}
    message = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": FINAL}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    start = message | {"content": [], "stop_reason": None, "usage": usage | {"output_tokens": 1}}
    events = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": FINAL}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 8},
        },
        {"type": "message_stop"},
    ]
    return json.dumps(message).encode(), b"".join(sse(e, event=e["type"]) for e in events)


def _sent_to_claude(capture: BackgroundServer) -> list[dict[str, Any]]:
    return [r.body for r in _state(capture).requests if r.dialect == "anthropic"]


@pytest.mark.parametrize("stream", [False, True])
def test_the_openai_sdk_runs_a_tool_loop_on_the_fallback(
    make_gateway: GatewayFactory, faults: Simulator, capture: BackgroundServer, stream: bool
) -> None:
    gw = _gateway(make_gateway, faults, capture)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0)
    ask: list[Any] = [{"role": "user", "content": "Weather in Rome?"}]

    def create(items: list[Any]) -> Any:
        if not stream:
            return client.responses.create(model="smart", input=items, tools=RESPONSES_TOOLS)
        with client.responses.stream(model="smart", input=items, tools=RESPONSES_TOOLS) as s:
            kinds = [event.type for event in s]
            assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
            return s.get_final_response()

    first = create(ask)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Rome"})]
    assert first.usage is not None and first.usage.input_tokens == 120
    row = gw.last()
    assert (row["provider"], row["model_served"], row["status"]) == (
        "cap-anthropic",
        "claude-opus-4-8",
        200,
    )
    assert (row["dialect"], row["input_tokens"], row["output_tokens"]) == (
        "openai-responses",
        120,
        30,
    )

    plain, streamed = _final_answer()
    _state(capture).answer_with("anthropic", plain=plain, stream=streamed)
    result = {"type": "function_call_output", "call_id": calls[0].call_id, "output": "21C"}
    history = [*ask, *(item.model_dump(exclude_none=True) for item in first.output), result]
    second = create(history)
    assert second.output_text == FINAL
    turn = _sent_to_claude(capture)[-1]["messages"]
    assert turn[-1]["content"] == [
        {"type": "tool_result", "tool_use_id": calls[0].call_id, "content": "21C"}
    ]
    assert turn[-2]["content"][-1]["type"] == "tool_use"
    assert gw.last()["output_tokens"] == 8


def test_previous_response_id_skips_the_fallback_with_its_reason(
    make_gateway: GatewayFactory, faults: Simulator, capture: BackgroundServer
) -> None:
    gw = _gateway(make_gateway, faults, capture)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(model="smart", input="and then?", previous_response_id="resp_0")
    assert "previous_response_id" in str(failed.value)
    assert _sent_to_claude(capture) == []


@pytest.mark.parametrize("stream", [False, True])
def test_an_openai_agents_tool_loop_survives_the_outage(
    make_gateway: GatewayFactory, faults: Simulator, capture: BackgroundServer, stream: bool
) -> None:
    agents = pytest.importorskip("agents")
    gw = _gateway(make_gateway, faults, capture)
    asked: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        asked.append(city)
        plain, streamed = _final_answer()  # Claude answers the tool's result in words
        _state(capture).answer_with("anthropic", plain=plain, stream=streamed)
        return "21C"

    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0)
    model = agents.OpenAIResponsesModel(model="smart", openai_client=client)
    agent = agents.Agent(name="weather", model=model, tools=[get_weather])
    agents.set_tracing_disabled(True)
    result = asyncio.run(_run(agents, agent, stream))
    assert result.final_output == FINAL
    assert asked == ["Rome"]
    turns = _sent_to_claude(capture)
    assert len(turns) == 2
    assert turns[1]["messages"][-1]["content"][0]["type"] == "tool_result"
    rows = [r for r in gw.rows() if r["provider"] == "cap-anthropic"]
    assert [(r["status"], r["stream"]) for r in rows] == [(200, int(stream))] * 2


async def _run(agents: Any, agent: Any, stream: bool) -> Any:
    if not stream:
        return await agents.Runner.run(agent, "Weather in Rome?")
    result = agents.Runner.run_streamed(agent, "Weather in Rome?")
    async for _ in result.stream_events():
        pass
    return result
