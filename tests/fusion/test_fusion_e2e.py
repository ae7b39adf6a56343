"""A fused model through the official SDKs, over loopback, against the simulator.

Three panel members (one per provider dialect), a judge and a writer: the
client sees one answer in its own dialect, streamed or not; the ledger has one
row whose tokens and cost are the sum of every bill line the simulator wrote
for it, and each call beside it in ``fusion_calls``.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from google.genai import types

from tests.conftest import TOKEN_COLUMNS, GatewayFactory, Harness, base_config
from tests.test_metering_e2e import an, gm, oa
from tollhouse.simulator import Simulator

PANEL = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"]
JUDGE = "openai/gpt-4o"
WRITER = "anthropic/claude-sonnet-4-5"
ASK = [{"role": "user", "content": "Is it faster to cache or to recompute?"}]


def fused_config(sim: Simulator, **project: Any) -> dict[str, Any]:
    config = base_config(sim.url)
    config["models"] = {"council": {"panel": PANEL, "judge": JUDGE, "writer": WRITER}}
    config["capacity"] = {"max_attempts": 1}
    if project:
        config["projects"]["acme"].update(project)
    return config


@pytest.fixture
def fused(make_gateway: GatewayFactory, simulator: Simulator) -> Harness:
    return make_gateway(fused_config(simulator))


def calls(gateway: Harness, request_id: str) -> list[dict[str, Any]]:
    gateway.settle()
    conn = sqlite3.connect(gateway.ledger_path)
    conn.row_factory = sqlite3.Row
    try:
        query = "SELECT * FROM fusion_calls WHERE request_id = ? ORDER BY n"
        return [dict(r) for r in conn.execute(query, (request_id,))]
    finally:
        conn.close()


def check_bill(gateway: Harness, sim: Simulator, request_id: str, before: int) -> dict[str, Any]:
    """The row and its calls add up to exactly what the simulator billed meanwhile."""
    row = gateway.row(request_id)
    bills = sim.bills()[before:]
    made = calls(gateway, request_id)
    assert len(made) == len(bills) == 5  # three members, the judge, the writer
    assert [c["role"] for c in made] == ["panel", "panel", "panel", "judge", "writer"]
    for column in TOKEN_COLUMNS:
        assert row[column] == sum(b["usage"][column] for b in bills), column
    billed = sum(Decimal(b["cost_usd"]) for b in bills)
    assert Decimal(row["cost_usd"]) == billed > 0
    assert sum(Decimal(c["cost_usd"]) for c in made) == billed
    assert (row["provider"], row["model_requested"], row["price_source"]) == (
        "fusion",
        "council",
        "fusion",
    )
    by_model = {b["model"]: Decimal(b["cost_usd"]) for b in bills}
    for c in made:  # each call at its own model's price
        assert Decimal(c["cost_usd"]) == by_model[c["model"]], c
    return row


def test_openai_client_gets_one_answer(fused: Harness, simulator: Simulator) -> None:
    before = len(simulator.bills())
    raw = oa(fused).chat.completions.with_raw_response.create(model="council", messages=ASK)
    answer = raw.parse()
    assert answer.choices[0].message.content
    assert raw.headers["x-tollhouse-served-by"] == WRITER
    assert raw.headers["x-tollhouse-trust"] == "full"
    fusion = raw.headers["x-tollhouse-fusion"]
    assert fusion.startswith("panel=3; answered=3; agreement=")
    row = check_bill(fused, simulator, raw.headers["x-tollhouse-request-id"], before)
    assert (row["status"], row["trust"], row["attempts"]) == (200, "full", 5)
    assert fusion.endswith(
        "; agreement=1.000; judge=consensus=1,contradictions=1,"
        "partial_coverage=1,unique_insights=1,blind_spots=1"
    )
    assert json.loads(row["tags"])["fusion_agreement"] == "1.000"  # the members' answers alike
    judged = [b for b in simulator.bills()[before:] if b["model"] == "gpt-4o"]
    assert judged and judged[0]["usage"]["output_tokens"] == 100  # the simulator's analysis


def test_openai_stream_with_a_member_failing(fused: Harness, faults: Simulator) -> None:
    faults.program("server_error", count=1, model="gemini-2.5-flash")
    before = len(faults.bills())
    with oa(fused).chat.completions.with_streaming_response.create(
        model="council", messages=ASK, stream=True, stream_options={"include_usage": True}
    ) as response:
        chunks = list(response.parse())
        headers = response.headers
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None
    assert headers["x-tollhouse-trust"] == "degraded"
    assert "answered=2; dropped=gemini/gemini-2.5-flash (HTTP 500)" in headers["x-tollhouse-fusion"]
    request_id = headers["x-tollhouse-request-id"]
    row = check_bill(fused, faults, request_id, before)
    assert (row["stream"], row["trust"], row["incomplete"]) == (1, "degraded", 0)
    dropped = calls(fused, request_id)[2]
    assert (dropped["status"], dropped["cost_usd"], dropped["error"]) == (500, "0", "HTTP 500")


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_client(fused: Harness, simulator: Simulator, stream: bool) -> None:
    before = len(simulator.bills())
    client = an(fused)
    if stream:
        with client.messages.stream(model="council", max_tokens=200, messages=ASK) as events:
            message = events.get_final_message()
            request_id = events.response.headers["x-tollhouse-request-id"]
    else:
        raw = client.messages.with_raw_response.create(
            model="council", max_tokens=200, messages=ASK
        )
        message, request_id = raw.parse(), raw.headers["x-tollhouse-request-id"]
    assert message.content and message.content[0].type == "text"
    row = check_bill(fused, simulator, request_id, before)
    assert (row["dialect"], row["stream"]) == ("anthropic", int(stream))


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_client(fused: Harness, simulator: Simulator, stream: bool) -> None:
    before = len(simulator.bills())
    client = gm(fused)
    if stream:
        chunks = list(client.models.generate_content_stream(model="council", contents="hello"))
        text = "".join(c.text or "" for c in chunks)
    else:
        text = client.models.generate_content(model="council", contents="hello").text or ""
    assert text
    row = fused.last()
    check_bill(fused, simulator, row["request_id"], before)
    assert (row["dialect"], row["stream"]) == ("gemini", int(stream))


def test_openrouter_shape_chooses_the_panel(fused: Harness, simulator: Simulator) -> None:
    before = len(simulator.bills())
    raw = oa(fused).chat.completions.with_raw_response.create(
        model="fusion", messages=ASK, extra_body={"models": ["openai/gpt-4o-mini", "xai/grok-3"]}
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-tollhouse-served-by"] == "openai/gpt-4o-mini"  # the first judges, writes
    request_id = raw.headers["x-tollhouse-request-id"]
    made = calls(fused, request_id)
    assert [(c["role"], c["model"]) for c in made] == [
        ("panel", "gpt-4o-mini"),
        ("panel", "grok-3"),
        ("judge", "gpt-4o-mini"),
        ("writer", "gpt-4o-mini"),
    ]
    billed = sum(Decimal(b["cost_usd"]) for b in simulator.bills()[before:])
    assert Decimal(fused.row(request_id)["cost_usd"]) == billed


def test_gemini_client_chooses_the_panel(fused: Harness, simulator: Simulator) -> None:
    client = gm(fused)
    config = types.GenerateContentConfig(
        http_options=types.HttpOptions(extra_body={"models": ["anthropic/claude-haiku-4-5"]})
    )
    assert client.models.generate_content(model="council", contents="hi", config=config).text
    row = fused.last()
    assert [c["model"] for c in calls(fused, row["request_id"])] == [
        "claude-haiku-4-5",
        "gpt-4o",
        "claude-sonnet-4-5",
    ]


def test_openrouter_fusion_stays_openrouters(fused: Harness, simulator: Simulator) -> None:
    raw = oa(fused).chat.completions.with_raw_response.create(
        model="openrouter/fusion", messages=ASK
    )
    assert raw.headers["x-tollhouse-served-by"] == "openrouter/fusion"
    assert simulator.bills()[-1]["flavor"] == "openrouter"
    assert "x-tollhouse-fusion" not in raw.headers


def test_a_responses_client_gets_a_fused_answer(fused: Harness) -> None:
    # The Responses codec (issue 17) lets the writer answer in the client's dialect.
    raw = oa(fused).responses.with_raw_response.create(model="council", input="hi")
    assert raw.http_response.status_code == 200
    assert "panel=" in raw.headers["x-tollhouse-fusion"]
    assert raw.parse().output_text


def test_nesting_is_refused(fused: Harness, simulator: Simulator) -> None:
    before = len(simulator.bills())
    client = oa(fused, default_headers={"X-Tollhouse-Fusion-Depth": "1"})
    with pytest.raises(openai.BadRequestError, match="don't nest"):
        client.chat.completions.create(model="council", messages=ASK)
    with pytest.raises(openai.BadRequestError, match="model itself"):
        oa(fused).chat.completions.create(
            model="fusion", messages=ASK, extra_body={"models": ["council"]}
        )
    assert len(simulator.bills()) == before  # nothing was sent upstream


def test_a_hard_budget_holds_the_whole_fan_out(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    hard = {"budget_daily_usd": "0.01", "budget_mode": "hard"}
    gateway = make_gateway(fused_config(simulator, **hard))
    before = len(simulator.bills())
    single = oa(gateway).chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=100)
    assert single.choices[0].message.content  # one call fits the budget
    with pytest.raises(openai.APIStatusError) as info:
        oa(gateway).chat.completions.create(model="council", messages=ASK, max_tokens=100)
    assert info.value.status_code == 402 and "budget" in str(info.value).lower()
    assert len(simulator.bills()) == before + 1  # the fan-out never started


def test_every_member_failing_is_an_error(fused: Harness, faults: Simulator) -> None:
    for model in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"):
        faults.program("overloaded", count=1, model=model)
    with pytest.raises(anthropic.APIStatusError) as info:
        an(fused).messages.create(model="council", max_tokens=50, messages=ASK)
    assert info.value.status_code == 503
    request_id = info.value.response.headers["x-tollhouse-request-id"]
    row = fused.row(request_id)
    assert (row["status"], row["provider"], row["cost_usd"]) == (503, "fusion", "0")
    assert [c["status"] for c in calls(fused, request_id)] == [503, 529, 503]


def test_a_slow_member_is_dropped(make_gateway: GatewayFactory, faults: Simulator) -> None:
    config = fused_config(faults)
    config["models"]["council"]["member_timeout_s"] = 0.3
    gateway = make_gateway(config)
    faults.program("latency=3000", count=1, model="claude-haiku-4-5")
    raw = oa(gateway).chat.completions.with_raw_response.create(model="council", messages=ASK)
    assert raw.parse().choices[0].message.content
    fusion = raw.headers["x-tollhouse-fusion"]
    assert "dropped=anthropic/claude-haiku-4-5 (timed out after 0.3s)" in fusion
    request_id = raw.headers["x-tollhouse-request-id"]
    row = gateway.row(request_id)
    assert (row["trust"], row["price_source"]) == ("degraded", "fusion-partial")
    slow = calls(gateway, request_id)[1]
    assert (slow["status"], slow["cost_usd"], slow["price_source"]) == (0, None, "no-answer")
    answered = [c for c in calls(gateway, request_id) if c["cost_usd"] is not None]
    assert Decimal(row["cost_usd"]) == sum(Decimal(c["cost_usd"]) for c in answered) > 0
