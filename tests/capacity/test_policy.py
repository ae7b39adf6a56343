"""The kill switch and model policy, without the stack: what is refused, and why."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tollhouse.capacity.policy import FileBlocks, ModelPolicy, ProjectRules


def test_a_config_block_refuses_that_model_only() -> None:
    policy = ModelPolicy(config_blocks=("openai/gpt-4o",))
    assert policy.refusal("acme", "openai", "gpt-4o") == (
        "blocked by the config ([capacity] blocked_models)"
    )
    assert policy.refusal("acme", "openai", "gpt-4o-mini") is None
    assert policy.refusal("acme", "anthropic", "gpt-4o") is None


def test_a_provider_block_refuses_every_model_of_it(tmp_path: Path) -> None:
    policy = ModelPolicy(store=FileBlocks(tmp_path / "blocks.json"))
    asyncio.run(policy.block("xai", None, "pulled overnight", "ops"))
    assert policy.refusal("acme", "xai", "grok-3") == "blocked by ops: pulled overnight"
    assert policy.refusal("acme", "openai", "grok-3") is None


def test_blocks_survive_a_restart_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "blocks.json"
    asyncio.run(ModelPolicy(store=FileBlocks(path)).block("openai", "gpt-4o", "r", "ops"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ModelPolicy(store=FileBlocks(path))
    asyncio.run(again.refresh())
    assert again.refusal("p", "openai", "gpt-4o") == "blocked by ops: r"
    assert asyncio.run(again.unblock("openai", "gpt-4o")) is True
    third = ModelPolicy(store=FileBlocks(path))
    asyncio.run(third.refresh())
    assert third.refusal("p", "openai", "gpt-4o") is None


def test_an_unreadable_blocks_file_keeps_the_blocks_in_force(tmp_path: Path) -> None:
    path = tmp_path / "blocks.json"
    policy = ModelPolicy(store=FileBlocks(path))
    asyncio.run(policy.block("openai", "gpt-4o", "", "ops"))
    path.write_text("{not json")
    asyncio.run(policy.refresh())
    assert policy.refusal("p", "openai", "gpt-4o") is not None


def test_a_projects_lists_allow_and_deny_by_glob() -> None:
    rules = {
        "acme": ProjectRules(allow=("anthropic/*", "openai/gpt-4o-mini")),
        "beta": ProjectRules(deny=("openai/o1*",)),
    }
    policy = ModelPolicy(projects=rules)
    assert policy.per_project
    assert policy.refusal("acme", "anthropic", "claude-sonnet-4-5") is None
    assert policy.refusal("acme", "openai", "gpt-4o-mini") is None
    assert "does not allow it" in str(policy.refusal("acme", "openai", "gpt-4o"))
    assert "denies it" in str(policy.refusal("beta", "openai", "o1-mini"))
    assert policy.refusal("beta", "openai", "gpt-4o") is None
    assert policy.refusal("other", "openai", "o1-mini") is None  # no lists: anything


NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)


@given(provider=NAME, model=NAME, other=NAME)
def test_a_block_refuses_exactly_its_target(provider: str, model: str, other: str) -> None:
    policy = ModelPolicy(config_blocks=(f"{provider}/{model}",))
    assert policy.refusal("p", provider, model) is not None
    assert (policy.refusal("p", provider, other) is None) == (other != model)
    assert policy.refusal("p", provider + "x", model) is None
