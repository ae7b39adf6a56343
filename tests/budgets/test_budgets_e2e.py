"""Budgets through the gateway, with the official SDKs and the simulator.

Prices are overridden so every call costs exactly what it reserved: input is
free and each request asks for (and gets) one output token at $1. A hard
budget of $10 then allows exactly ten calls.
"""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import ACME_KEY, GatewayFactory, Harness, base_config
from tollhouse.app import create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

MODEL = "gpt-4o-mini"


def budget_config(sim: Simulator, **project: Any) -> dict[str, Any]:
    config = base_config(sim.url)
    config["projects"]["acme"].update(project)
    config["prices"] = {
        f"openai/{MODEL}": {"input": 0, "output": 1_000_000},
        "anthropic/claude-sonnet-4-5": {"input": 0, "output": 1_000_000},
    }
    return config


def ask(gateway: Harness) -> Any:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "one token please"}]
    )


def all_at_once(gateway: Harness, model: str, n: int) -> list[int]:
    """``n`` one-token calls at once; their statuses (a refusal must name the budget)."""
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)

    async def one() -> int:
        try:
            await client.chat.completions.create(
                model=model, max_tokens=1, messages=[{"role": "user", "content": "go"}]
            )
            return 200
        except openai.APIStatusError as exc:
            assert "budget_daily_usd" in exc.message
            return exc.status_code

    async def run() -> list[int]:
        try:
            return await asyncio.gather(*(one() for _ in range(n)))
        finally:
            await client.close()

    return asyncio.run(run())


def ledger_total(gateway: Harness) -> Decimal:
    rows = gateway.rows()
    return sum((Decimal(r["cost_usd"]) for r in rows if r["cost_usd"]), Decimal(0))


def test_hundred_concurrent_requests_against_a_hard_budget_of_ten(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    gateway = make_gateway(budget_config(simulator, budget_daily_usd=10, budget_mode="hard"))
    billed_before = len(simulator.bills())
    statuses = all_at_once(gateway, MODEL, 100)
    assert statuses.count(200) == 10
    assert len(simulator.bills()) - billed_before == 10  # refused ones were never sent
    assert statuses.count(402) == 90
    assert ledger_total(gateway) == Decimal(10)
    rows = gateway.rows()
    assert sum(r["status"] == 402 for r in rows) == 90
    assert {r["error"] for r in rows if r["status"] == 402} == {"gateway:budget_exceeded"}


def test_hard_budget_refusal_is_shaped_for_the_anthropic_client(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    gateway = make_gateway(budget_config(simulator, budget_daily_usd=1, budget_mode="hard"))
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ACME_KEY, max_retries=0)

    def call() -> Any:
        return client.messages.create(
            model="anthropic/claude-sonnet-4-5",
            max_tokens=1,
            messages=[{"role": "user", "content": "hi"}],
        )

    call()
    with pytest.raises(anthropic.APIStatusError) as err:
        call()
    assert err.value.status_code == 402
    assert err.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert "raise projects.acme.budget_daily_usd" in err.value.message


def test_soft_budget_warns_in_a_header_and_serves(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    gateway = make_gateway(budget_config(simulator, budget_daily_usd=2))
    headers = [ask(gateway).headers.get("x-tollhouse-budget") for _ in range(3)]
    assert headers[:2] == [None, None]
    assert headers[2] is not None
    assert headers[2].startswith("warn; project 'acme' is over its soft daily budget")
    assert ledger_total(gateway) == Decimal(3)


def test_a_soft_warning_with_nothing_spent_says_only_the_worst_case_would_cross(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    """Was: "over the budget" when $0 was spent, for a request whose worst case crossed it."""
    gateway = make_gateway(budget_config(simulator, budget_daily_usd="0.5"))
    warning = ask(gateway).headers.get("x-tollhouse-budget")  # up to $1, nothing spent
    assert warning is not None and "over the soft" not in warning and "is over" not in warning
    assert warning.startswith("warn; this request could take project 'acme' over its soft daily")
    assert "0.0000 USD spent" in warning
    assert ledger_total(gateway) == Decimal(1)  # soft: served, and now really over
    after = ask(gateway).headers.get("x-tollhouse-budget")
    assert after is not None and after.startswith("warn; project 'acme' is over its soft daily")


def test_projects_without_a_budget_are_not_held(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    config = budget_config(simulator, budget_daily_usd=1, budget_mode="hard")
    gateway = make_gateway(config)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-other", max_retries=0)
    for _ in range(3):  # header-attributed to another project: no budget, no refusal
        client.chat.completions.create(
            model=MODEL,
            max_tokens=1,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Tollhouse-Project": "free"},
        )
    assert ledger_total(gateway) == Decimal(3)


def test_spend_already_in_the_ledger_counts_after_a_restart(
    simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import KEY_ENV, PROVIDER_KEY

    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    settings = parse_settings(budget_config(simulator, budget_daily_usd=2, budget_mode="hard"))
    ledger = tmp_path / "ledger.db"
    for expected in ([200, 200], [402]):
        with BackgroundServer(lambda: create_app(settings, ledger_path=ledger)) as srv:
            client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key=ACME_KEY, max_retries=0)
            got = []
            for _ in expected:
                try:
                    client.chat.completions.create(
                        model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "x"}]
                    )
                    got.append(200)
                except openai.APIStatusError as exc:
                    got.append(exc.status_code)
            assert got == expected
            from tollhouse.app import GATEWAY

            assert srv.app is not None
            srv.call(srv.app[GATEWAY].settle())
    conn = sqlite3.connect(ledger)
    assert conn.execute("SELECT count(*) FROM requests WHERE status = 200").fetchone() == (2,)


def test_hard_budget_refusal_for_gemini_and_a_stream(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types

    config = budget_config(simulator, budget_daily_usd=0, budget_mode="hard")
    gateway = make_gateway(config)
    client = genai.Client(
        api_key="gemini-client-key",
        http_options=types.HttpOptions(
            base_url=gateway.url, headers={"X-Tollhouse-Project": "acme"}
        ),
    )
    with pytest.raises(genai_errors.ClientError) as err:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert err.value.code == 402 and err.value.status == "RESOURCE_EXHAUSTED"
    assert "budget_daily_usd" in str(err.value.message)
    stream = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        stream.chat.completions.create(
            model=MODEL, stream=True, messages=[{"role": "user", "content": "x"}]
        )
    assert refused.value.status_code == 402
    assert refused.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert len([r for r in gateway.rows() if r["status"] == 402]) == 2


def test_a_dearer_fallback_cannot_overshoot_a_hard_budget(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    """Each call reserves what the dearest candidate of its chain would cost."""
    config = budget_config(simulator, budget_daily_usd=10, budget_mode="hard")
    config["prices"]["anthropic/claude-sonnet-4-5"] = {"input": 0, "output": 3_000_000}
    config["models"] = {"smart": {"chain": [f"openai/{MODEL}", "anthropic/claude-sonnet-4-5"]}}
    config["capacity"] = {"max_attempts": 1}
    gateway = make_gateway(config)
    simulator.program("server_error", count=1000, model=MODEL)  # every call falls back
    try:
        statuses = all_at_once(gateway, "smart", 10)
    finally:
        simulator.reset()
    assert statuses.count(200) == 3 and statuses.count(402) == 7
    assert ledger_total(gateway) == Decimal(9)  # never more than the budget of 10
