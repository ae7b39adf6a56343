"""The sans-io pieces of fusion: the judge's analysis read back, the prompts, the plan."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import base_config
from tollhouse.budgets.book import Budget, BudgetBook
from tollhouse.budgets.gate import BudgetGate
from tollhouse.errors import BadRequest, BudgetExceeded
from tollhouse.fusion import PARTS, Panel, parse_analysis
from tollhouse.fusion.plan import check_depth, chosen_panel
from tollhouse.fusion.prompts import (
    JUDGE_MARKER,
    JUDGE_MAX_TOKENS,
    MemberAnswer,
    judge_payload,
    writer_payload,
)
from tollhouse.gateway.routing import Router
from tollhouse.pricing import Pricer
from tollhouse.providers import build_providers
from tollhouse.settings import parse_settings
from tollhouse.simulator import judge as simulated

COUNCIL = Panel(("openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"), "openai/gpt-4o")


def router() -> Router:
    settings = parse_settings(base_config("http://127.0.0.1:9"))
    return Router(
        build_providers(settings.providers),
        {"cheap": ("openai/gpt-4o-mini",)},
        {"council": COUNCIL},
    )


def test_the_analysis_is_read_from_prose_and_fences() -> None:
    body = {"consensus": ["a"], "contradictions": ["b", {"who": 1}], "blind_spots": []}
    found = parse_analysis("Here it is:\n```json\n" + json.dumps(body) + "\n```")
    assert found is not None
    assert found.consensus == ("a",) and found.contradictions == ("b", '{"who": 1}')
    assert found.unique_insights == () and found.counts().startswith("consensus=1 contra")


@pytest.mark.parametrize(
    "text",
    ["", "no json here", "{not json}", '{"other": 1}', '{"consensus": "a string"}', "[1, 2]"],
)
def test_no_usable_analysis_is_none(text: str) -> None:
    assert parse_analysis(text) is None


def test_the_simulators_analysis_is_what_the_judge_is_asked_for() -> None:
    assert JUDGE_MARKER.encode() == simulated.JUDGE_MARKER
    assert simulated.PARTS == PARTS
    pieces, tokens = simulated.judge_pieces(per_piece=3)
    text = "".join(pieces)
    assert all(len(p) == 12 for p in pieces[:-1]) and len(text) == 4 * tokens
    found = parse_analysis(text)
    assert found is not None and all(getattr(found, part) for part in PARTS)


def test_the_judge_sees_the_conversation_and_every_answer() -> None:
    answers = [MemberAnswer("openai/a", "yes"), MemberAnswer("anthropic/b", "no")]
    payload = judge_payload([{"role": "user", "content": "cache?"}], answers, ["gemini/c (x)"])
    system, user = payload["messages"]
    assert JUDGE_MARKER in system["content"] and all(p in system["content"] for p in PARTS)
    assert "user: cache?" in user["content"]
    assert "(openai/a)\nyes" in user["content"] and "(anthropic/b)\nno" in user["content"]
    assert "gemini/c (x)" in user["content"]
    assert payload["max_tokens"] == JUDGE_MAX_TOKENS


def test_the_writer_gets_the_conversation_without_tools() -> None:
    conversation = {
        "model": "council",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "auto",
        "temperature": 0.2,
        "stream": True,
    }
    payload = writer_payload(conversation, [MemberAnswer("openai/a", "yes")], None, ["x (y)"])
    assert "tools" not in payload and "tool_choice" not in payload
    assert (payload["temperature"], payload["stream"]) == (0.2, True)
    brief, *rest = payload["messages"]
    assert rest == conversation["messages"]
    assert brief["role"] == "system" and "did not answer: x (y)" in brief["content"]
    assert "no usable analysis" in brief["content"]


def test_a_configured_panel_or_one_chosen_in_the_request() -> None:
    panels = {"council": COUNCIL}
    assert chosen_panel("gpt-4o", {}, panels) is None
    assert chosen_panel("openrouter/fusion", {"models": ["a"]}, panels) is None
    assert chosen_panel("council", {}, panels) == COUNCIL
    chosen = chosen_panel("council", {"models": ["x/y"]}, panels)
    assert chosen == Panel(("x/y",), COUNCIL.judge)
    assert chosen_panel("fusion", {"models": ["a/b", "c/d"]}, panels) == Panel(
        ("a/b", "c/d"), "a/b"
    )


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"models": []},
        {"models": "a"},
        {"models": [1]},
        {"models": ["council"]},
        {"models": ["a"] * 9},
    ],
)
def test_a_bad_panel_in_the_request_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        chosen_panel("fusion", payload, {"council": COUNCIL})


def test_the_depth_header() -> None:
    check_depth({})
    check_depth({"X-Tollhouse-Fusion-Depth": "0"})
    with pytest.raises(BadRequest, match="nest"):
        check_depth({"X-Tollhouse-Fusion-Depth": "1"})


def test_the_router_resolves_each_role_like_a_chain_entry() -> None:
    plan = router().panel("council", {"models": ["cheap", "gemini/gemini-2.5-flash"]}, "anthropic")
    assert plan is not None
    (alias,), (gemini,) = plan.panel
    assert (alias.provider.name, alias.model, alias.dialect) == (
        "openai",
        "gpt-4o-mini",
        "openai-chat",
    )
    assert (gemini.model, gemini.dialect) == ("gemini-2.5-flash", "gemini")
    assert [(r.model, r.dialect) for r in plan.judge] == [("gpt-4o", "openai-chat")]
    assert [(r.model, r.dialect) for r in plan.writer] == [("gpt-4o", "openai-chat")]
    assert router().panel("gpt-4o", {}, "openai-chat") is None


def gate(limit: str) -> BudgetGate:
    book = BudgetBook({"acme": Budget(Decimal(limit), None, True)})
    return BudgetGate(book, Pricer({}), lambda: datetime(2026, 12, 5, tzinfo=UTC))


def test_a_fan_out_holds_every_call_and_the_answers_they_read() -> None:
    plan = router().panel("council", {}, "openai-chat")
    assert plan is not None
    payload = {"messages": [{"role": "user", "content": "q"}], "max_tokens": 100}
    single = gate("1").estimate(plan.panel[0][0], payload, datetime(2026, 12, 5, tzinfo=UTC))
    hold = asyncio.run(gate("1").reserve_fan_out("acme", plan.stages(), payload))
    assert hold is not None and hold.amount > 3 * single  # two members, a judge, a writer
    judge_alone = gate("1").estimate(
        plan.judge[0],
        {**payload, "max_tokens": JUDGE_MAX_TOKENS},
        datetime(2026, 12, 5, tzinfo=UTC),
    )
    assert hold.amount > judge_alone  # and the judge reads what the panel wrote
    with pytest.raises(BudgetExceeded):
        asyncio.run(
            gate(str(hold.amount - Decimal("0.000001"))).reserve_fan_out(
                "acme", plan.stages(), payload
            )
        )
