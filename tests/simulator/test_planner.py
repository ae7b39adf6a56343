from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tollhouse.simulator.flavors import FLAVORS
from tollhouse.simulator.planner import Overrides, PlanContext, Reply, SimRequest, plan
from tollhouse.simulator.prompt import Prompt, PromptCache, Segment

PROMPT = Prompt([Segment(10, "hello", turn=0)])


def make_plan(req: SimRequest, over: Overrides | None = None, output: int = 16) -> Reply:
    ctx = PlanContext(
        flavor=FLAVORS["openai"],
        cache=PromptCache(1024),
        explicit_cache=False,
        default_output_tokens=output,
        chunk_tokens=4,
        reasoning_multiplier=2,
    )
    return plan(req, ctx, over or Overrides(), reply_id="id", when=datetime.now(UTC))


def test_default_answer_length_and_usage() -> None:
    reply = make_plan(SimRequest(model="gpt-4o-mini", stream=False, prompt=PROMPT))
    assert reply.usage.input_tokens == 10
    assert reply.usage.output_tokens == reply.text_tokens == 16
    assert not reply.truncated
    assert reply.cost is not None and reply.cost > 0


def test_max_tokens_below_the_default_truncates() -> None:
    reply = make_plan(SimRequest(model="gpt-4o-mini", stream=False, prompt=PROMPT, max_output=5))
    assert reply.text_tokens == 5 and reply.truncated
    assert len(reply.text.encode()) == 20


def test_output_header_overrides_the_default() -> None:
    req = SimRequest(model="gpt-4o-mini", stream=False, prompt=PROMPT)
    assert make_plan(req, Overrides(output_tokens=40)).text_tokens == 40


@pytest.mark.parametrize(
    ("model", "reasons"),
    [
        ("o3", True),
        ("o4-mini", True),
        ("gpt-5-mini", True),
        ("openai/o1", True),
        ("gemini-2.5-flash", True),
        ("grok-3-mini", True),
        ("grok-4-fast-non-reasoning", False),
        ("gpt-5-chat-latest", False),
        ("gpt-4o-mini", False),
        ("claude-sonnet-4-6", False),
        ("o3dfish", False),
    ],
)
def test_reasoning_models_by_name(model: str, reasons: bool) -> None:
    reply = make_plan(SimRequest(model=model, stream=False, prompt=PROMPT))
    assert reply.reasoning_tokens == (32 if reasons else 0)
    assert reply.usage.output_tokens == 16 + reply.reasoning_tokens


def test_explicit_switch_and_budget_win_over_the_name() -> None:
    off = SimRequest(model="o3", stream=False, prompt=PROMPT, reasoning=False)
    capped = SimRequest(model="x", stream=False, prompt=PROMPT, reasoning=True, reasoning_budget=7)
    assert make_plan(off).reasoning_tokens == 0
    assert make_plan(capped).reasoning_tokens == 7


def test_partial_usage_counts_reasoning_once_anything_was_sent() -> None:
    reply = make_plan(SimRequest(model="o3", stream=True, prompt=PROMPT))
    assert reply.partial(0, started=False)[0].output_tokens == 0
    usage, cost = reply.partial(4, started=True)
    assert (usage.output_tokens, usage.reasoning_tokens) == (36, 32)
    assert cost is not None and reply.cost is not None and cost < reply.cost
