"""A hard budget holds whatever a request carries: the issue's overspends, replayed.

Each case was a real overspend before the reservation became a bound: file
parts estimated as a flat 1,000 tokens, a request without ``max_tokens``
answered at any length, ``n`` ignored. The simulator bills like a provider
(documents per page, ``n`` answers, ``x-sim-output-tokens`` as long an answer
as the request allows), and after each run the ledger's spend is at most the
hard budget.
"""

from __future__ import annotations

import asyncio
import base64
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from tests.budgets.test_budgets_e2e import MODEL, budget_config, ledger_total
from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY, GatewayFactory, Harness
from tollhouse.app import GATEWAY, create_app
from tollhouse.budgets.bound import OUTPUT_CAP
from tollhouse.ledger.store import connect
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7 " * 11_000).decode()
"""~130 kB of base64: the simulator bills it as 32 pages of 1,500 tokens (48,000)."""


def concurrently(url: str, times: int, **create: Any) -> list[int]:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0)

    async def one() -> int:
        try:
            await client.chat.completions.create(model=MODEL, **create)
            return 200
        except openai.APIStatusError as exc:
            assert "budget" in exc.message, exc.message
            return exc.status_code

    async def run() -> list[int]:
        try:
            return await asyncio.gather(*(one() for _ in range(times)))
        finally:
            await client.close()

    return asyncio.run(run())


def test_file_parts_cannot_take_a_hard_budget_past_its_limit(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    """Was: $0.05 hard budget, $3.04 spent. Input $1 per million tokens here."""
    config = budget_config(simulator, budget_daily_usd="0.2", budget_mode="hard")
    config["prices"][f"openai/{MODEL}"] = {"input": 1, "output": 1}
    gateway = make_gateway(config)
    content: Any = [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"file_data": PDF, "filename": "a.pdf"}},
    ]
    statuses = concurrently(
        gateway.url, 8, max_tokens=10, messages=[{"role": "user", "content": content}]
    )
    statuses += concurrently(
        gateway.url, 8, max_tokens=10, messages=[{"role": "user", "content": content}]
    )
    served = [r for r in gateway.rows() if r["status"] == 200]
    assert served and served[0]["input_tokens"] > 40_000  # billed per page, as providers do
    assert statuses.count(402) >= 13
    assert ledger_total(gateway) <= Decimal("0.2")


def test_no_max_tokens_is_capped_upstream_at_what_was_reserved(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    """Was: no max_tokens, 1,024 reserved, no cap sent: a $2 budget went to $6."""
    config = budget_config(simulator, budget_daily_usd=5000, budget_mode="hard")
    gateway = make_gateway(config)  # $1 an output token
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)
    ask: Any = {"model": MODEL, "messages": [{"role": "user", "content": "a long one"}]}
    long_answer = {"x-sim-output-tokens": "6000"}
    answer = client.chat.completions.create(**ask, extra_headers=long_answer)
    assert answer.usage is not None and answer.usage.completion_tokens == OUTPUT_CAP
    assert answer.choices[0].finish_reason == "length"
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(**ask, extra_headers=long_answer)
    assert refused.value.status_code == 402
    assert ledger_total(gateway) == OUTPUT_CAP <= 5000


def test_a_soft_budget_or_no_budget_sends_the_request_as_it_came(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    gateway = make_gateway(budget_config(simulator, budget_daily_usd=1_000_000))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "a long one"}],
        extra_headers={"x-sim-output-tokens": "6000"},
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 6000


def test_n_answers_are_reserved_on_one_instance(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    gateway: Harness = make_gateway(
        budget_config(simulator, budget_daily_usd=8, budget_mode="hard")
    )
    statuses = concurrently(
        gateway.url, 6, max_tokens=1, n=8, messages=[{"role": "user", "content": "go"}]
    )
    assert statuses.count(200) == 1 and statuses.count(402) == 5
    assert ledger_total(gateway) == Decimal(8)


def test_n_answers_across_three_instances_stay_within_the_hard_budget(
    simulator: Simulator, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: n=8 spent $7.20 of a $1 budget across 3 instances ($1.60 on one)."""
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    config = budget_config(simulator, budget_daily_usd=1, budget_mode="hard")
    config["prices"][f"openai/{MODEL}"] = {"input": 0, "output": 100_000}  # $0.10 a token
    settings = parse_settings(config)
    servers = [
        BackgroundServer(lambda: create_app(settings, ledger_path=postgres_url)).start()
        for _ in range(3)
    ]
    try:
        statuses = [
            s
            for server in servers
            for s in concurrently(
                server.url, 6, max_tokens=1, n=8, messages=[{"role": "user", "content": "go"}]
            )
        ]
        for server in servers:
            server.call(server.app[GATEWAY].settle())  # type: ignore[index]
    finally:
        for server in servers:
            server.stop()
    assert statuses.count(200) == 1  # $0.80 held, then $0.80 spent: none fits after it
    conn = connect(postgres_url, readonly=True)
    try:
        costs = conn.execute("SELECT cost_usd FROM requests WHERE cost_usd IS NOT NULL").fetchall()
    finally:
        conn.close()
    assert sum(Decimal(c) for (c,) in costs) == Decimal("0.8")


def test_a_project_header_cannot_move_a_keys_spend_past_its_hard_budget(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    """Was: a project header over a budgeted virtual key spent past the key's hard budget."""
    gateway = make_gateway(budget_config(simulator, budget_daily_usd=2, budget_mode="hard"))
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=ACME_KEY,
        max_retries=0,
        default_headers={"X-Tollhouse-Project": "free"},
    )
    statuses = []
    for _ in range(4):
        try:
            client.chat.completions.create(
                model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "x"}]
            )
            statuses.append(200)
        except openai.APIStatusError as exc:
            statuses.append(exc.status_code)
    assert statuses == [200, 200, 402, 402]
    rows = gateway.rows()
    assert {r["project"] for r in rows} == {"acme"}
    assert ledger_total(gateway) == Decimal(2)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/responses", {"model": MODEL, "input": "a long one"}),
        (
            "/v1beta/models/gemini-2.0-flash:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": "a long one"}]}]},
        ),
        (
            "/v1/chat/completions",
            {"model": "local/llama-3", "messages": [{"role": "user", "content": "a long one"}]},
        ),
    ],
)
def test_every_dialect_is_capped_when_it_names_no_maximum(
    make_gateway: GatewayFactory, simulator: Simulator, path: str, body: dict[str, Any]
) -> None:
    import json
    import urllib.request

    config = budget_config(simulator, budget_daily_usd=100_000, budget_mode="hard")
    config["prices"]["local/llama-3"] = {"input": 0, "output": 1_000_000}
    gateway = make_gateway(config)
    headers = {
        "Authorization": f"Bearer {ACME_KEY}",
        "x-goog-api-key": ACME_KEY,
        "x-sim-output-tokens": "6000",
    }
    request = urllib.request.Request(
        gateway.url + path,
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    [row] = gateway.rows()
    assert row["output_tokens"] == OUTPUT_CAP


def test_a_server_side_tool_is_refused_on_a_hard_budget(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    gateway = make_gateway(budget_config(simulator, budget_daily_usd=100, budget_mode="hard"))
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ACME_KEY, max_retries=0)
    billed = len(simulator.bills())
    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(
            model="anthropic/claude-sonnet-4-5",
            max_tokens=10,
            tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
            messages=[{"role": "user", "content": "search"}],
        )
    assert refused.value.status_code == 402
    assert "web_search_20250305" in refused.value.message
    assert "no cost bound" in refused.value.message
    assert len(simulator.bills()) == billed
