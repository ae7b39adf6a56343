"""The request flow around the dialects: faults, latency, bills, auth, overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tollhouse.simulator import Simulator, SimulatorSettings, serve

from .helpers import post

Client = Callable[[str], openai.OpenAI]
MESSAGES: Any = [{"role": "user", "content": "hello there"}]
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}


def test_header_fault_applies_to_that_request_only(sim: Simulator) -> None:
    url = f"{sim.url}/openai/v1/chat/completions"
    assert post(url, CHAT, {"x-sim-fault": "server_error"}).status == 500
    assert post(url, CHAT).status == 200
    assert [b["status"] for b in sim.bills()] == [500, 200]


def test_header_items_layer_over_a_programmed_fault(sim: Simulator) -> None:
    sim.program("rate_limit,retry_after=9")
    raw = post(f"{sim.url}/v1/chat/completions", CHAT, {"x-sim-fault": "retry_after=2"})
    assert raw.status == 429 and raw.headers["retry-after"] == "2"


def test_programmed_faults_count_down(sim: Simulator) -> None:
    sim.program("overloaded", count=2)
    url = f"{sim.url}/v1/chat/completions"
    assert [post(url, CHAT).status for _ in range(3)] == [503, 503, 200]


def test_programmed_fault_for_one_model_skips_others(sim: Simulator) -> None:
    sim.program("not_found", model="gpt-4.1")
    url = f"{sim.url}/v1/chat/completions"
    assert post(url, CHAT).status == 200
    assert post(url, {**CHAT, "model": "gpt-4.1"}).status == 404


def test_default_retry_after_comes_from_settings(sim: Simulator) -> None:
    sim.program("rate_limit")
    raw = post(f"{sim.url}/v1/chat/completions", CHAT)
    assert raw.headers["retry-after"] == "1" and raw.headers["retry-after-ms"] == "1000"


def test_bad_fault_header_is_a_dialect_shaped_400(sim: Simulator) -> None:
    raw = post(
        f"{sim.url}/anthropic/v1/messages",
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        {"x-sim-fault": "explode"},
    )
    assert raw.status == 400
    assert raw.json()["error"]["type"] == "invalid_request_error"
    assert "explode" in raw.json()["error"]["message"]


def test_invalid_json_is_a_400(sim: Simulator) -> None:
    raw = post(f"{sim.url}/gemini/v1beta/models/gemini-2.5-flash:generateContent", b"{nope")
    assert raw.status == 400 and raw.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert sim.bills()[0]["status"] == 400


@pytest.fixture
def gone(tmp_path: Path) -> Iterator[Simulator]:
    settings = SimulatorSettings(bill_path=tmp_path / "b.jsonl", gone_models=frozenset({"o1"}))
    with Simulator(settings) as simulator:
        yield simulator


def test_gone_models_always_404(gone: Simulator) -> None:
    raw = post(f"{gone.url}/v1/chat/completions", {**CHAT, "model": "o1"})
    assert raw.status == 404 and raw.json()["error"]["code"] == "model_not_found"
    assert post(f"{gone.url}/v1/chat/completions", CHAT).status == 200


def test_latency_settings_and_fault_add_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []

    async def record(ms: float) -> None:
        pauses.append(ms)

    monkeypatch.setattr(serve, "_pause", record)
    settings = SimulatorSettings(bill_path=tmp_path / "b", latency_ms=100, stream_chunk_delay_ms=7)
    with Simulator(settings) as sim:
        post(
            f"{sim.url}/v1/chat/completions",
            {**CHAT, "stream": True},
            {"x-sim-fault": "latency=50"},
        )
    assert pauses[:2] == [150, 0]  # before the response, then no delay before the first frame
    assert set(pauses[2:]) == {7}


def test_output_and_reasoning_headers_override(sim: Simulator) -> None:
    raw = post(
        f"{sim.url}/v1/chat/completions",
        CHAT,
        {"x-sim-output-tokens": "40", "x-sim-reasoning-tokens": "5"},
    )
    usage = raw.json()["usage"]
    assert usage["completion_tokens"] == 45
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 5


def test_cut_plain_response_drops_the_connection_but_bills_it_all(
    sim: Simulator, openai_client: Client
) -> None:
    sim.program("cut=0")
    with pytest.raises(openai.APIConnectionError):
        openai_client("openai").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [bill] = sim.bills()
    assert bill["error"] == "cut" and not bill["complete"]
    assert bill["usage"]["output_tokens"] == 16


def test_cut_before_the_first_frame_bills_input_only(sim: Simulator) -> None:
    sim.program("cut=0")
    with pytest.raises(Exception, match=r"IncompleteRead|incomplete|closed|Remote"):
        post(f"{sim.url}/v1/chat/completions", {**CHAT, "model": "o3", "stream": True})
    usage = sim.bills()[0]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["reasoning_tokens"]) == (3, 0, 0)


@pytest.mark.parametrize(
    ("headers", "style"),
    [
        ({"authorization": "Bearer sk-1"}, "bearer"),
        ({"x-api-key": "k"}, "x-api-key"),
        ({"x-goog-api-key": "k"}, "x-goog-api-key"),
        ({}, None),
    ],
)
def test_auth_style_is_recorded_never_the_key(
    sim: Simulator, headers: dict[str, str], style: str | None
) -> None:
    post(f"{sim.url}/v1/chat/completions", CHAT, headers)
    [bill] = sim.bills()
    assert bill["auth"] == style
    assert "sk-1" not in sim.bill_path.read_text()


def test_tollhouse_headers_are_noticed(sim: Simulator) -> None:
    post(f"{sim.url}/v1/chat/completions", CHAT)
    post(f"{sim.url}/v1/chat/completions", CHAT, {"X-Tollhouse-Project": "p"})
    assert [b["saw_tollhouse_headers"] for b in sim.bills()] == [False, True]


def test_bill_line_fields(sim: Simulator) -> None:
    raw = post(f"{sim.url}/xai/v1/chat/completions", {**CHAT, "model": "grok-4"})
    [bill] = sim.bills()
    assert set(bill) == {
        "ts",
        "flavor",
        "dialect",
        "id",
        "request_id",
        "path",
        "model",
        "stream",
        "status",
        "complete",
        "error",
        "auth",
        "saw_tollhouse_headers",
        "usage",
        "cost_usd",
    }
    assert set(bill["usage"]) == {
        "input_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "output_tokens",
        "reasoning_tokens",
    }
    assert bill["request_id"] == raw.headers["x-request-id"]
    assert bill["path"] == "/xai/v1/chat/completions"
