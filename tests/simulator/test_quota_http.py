"""Quotas through HTTP and the official SDKs: 429s, rate-limit headers, stats, bills."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.simulator.quota import FakeClock

from .helpers import get, post

MESSAGES: Any = [{"role": "user", "content": "hello there"}]
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 8}
CLAUDE = "claude-haiku-4-5"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limited(clock: FakeClock) -> Iterator[Simulator]:
    """5 requests per minute for gpt-4o-mini, claude-haiku-4-5 and gemini-2.5-flash."""
    models = frozenset({"gpt-4o-mini", CLAUDE, "gemini-2.5-flash"})
    with Simulator(SimulatorSettings(rpm=5, quota_models=models), clock=clock) as sim:
        yield sim


def chat_url(sim: Simulator) -> str:
    return f"{sim.url}/openai/v1/chat/completions"


def test_five_admitted_then_a_429_with_the_real_wait(limited: Simulator) -> None:
    answers = [post(chat_url(limited), CHAT) for _ in range(6)]
    assert [a.status for a in answers] == [200] * 5 + [429]
    rejected = answers[-1]
    assert rejected.headers["retry-after"] == "12"
    assert rejected.headers["retry-after-ms"] == "12000"
    assert rejected.headers["x-ratelimit-limit-requests"] == "5"
    assert rejected.headers["x-ratelimit-remaining-requests"] == "0"
    assert rejected.headers["x-ratelimit-reset-requests"] == "1m0s"
    error = rejected.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "(RPM): Limit 5," in error["message"] and "try again in 12s" in error["message"]


def test_success_headers_carry_the_remaining_budget(limited: Simulator) -> None:
    answers = [post(chat_url(limited), CHAT) for _ in range(3)]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["4", "3", "2"]
    assert [a.headers["x-ratelimit-reset-requests"] for a in answers] == ["12s", "24s", "36s"]
    assert {a.headers["x-ratelimit-limit-requests"] for a in answers} == {"5"}


def test_time_frees_a_slot(limited: Simulator, clock: FakeClock) -> None:
    for _ in range(5):
        post(chat_url(limited), CHAT)
    clock.advance(7.5)
    early = post(chat_url(limited), CHAT)
    assert early.status == 429 and early.headers["retry-after-ms"] == "4500"
    assert early.headers["retry-after"] == "5"  # whole seconds, rounded up
    clock.advance(4.5)
    assert post(chat_url(limited), CHAT).status == 200
    assert post(chat_url(limited), CHAT).status == 429


def test_streams_carry_the_budget_too(limited: Simulator) -> None:
    raw = post(chat_url(limited), {**CHAT, "stream": True})
    assert raw.status == 200 and raw.headers["x-ratelimit-remaining-requests"] == "4"


def test_openai_sdk_without_retries_raises_rate_limit_error(limited: Simulator) -> None:
    client = openai.OpenAI(base_url=f"{limited.url}/openai/v1", api_key="sk", max_retries=0)
    for _ in range(5):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert float(caught.value.response.headers["retry-after-ms"]) > 0


def test_rejections_are_billed_as_zero_cost_errors(limited: Simulator) -> None:
    for _ in range(6):
        post(chat_url(limited), CHAT)
    bills = limited.bills()
    assert [b["status"] for b in bills] == [200] * 5 + [429]
    assert bills[-1]["cost_usd"] == "0" and bills[-1]["error"] == "rate_limit"
    assert bills[-1]["complete"] is False and bills[-1]["usage"]["input_tokens"] == 0


def test_stats_over_http_and_from_the_simulator(limited: Simulator) -> None:
    for _ in range(7):
        post(chat_url(limited), CHAT)
    post(chat_url(limited), {**CHAT, "model": "gpt-4o"})
    expected = {
        "admitted": 6,
        "rate_limited": 2,
        "by_model": {
            "gpt-4o": {"admitted": 1, "rate_limited": 0},
            "gpt-4o-mini": {"admitted": 5, "rate_limited": 2},
        },
    }
    assert get(f"{limited.url}/_sim/stats").json() == expected
    assert limited.stats() == expected


def test_models_outside_the_quota_are_unlimited(limited: Simulator) -> None:
    answers = [post(chat_url(limited), {**CHAT, "model": "gpt-4o"}) for _ in range(8)]
    assert {a.status for a in answers} == {200}
    assert answers[-1].headers["x-ratelimit-limit-requests"] == "500"  # the usual healthy budget


def test_reset_refills_the_quota(limited: Simulator) -> None:
    for _ in range(6):
        post(chat_url(limited), CHAT)
    assert post(f"{limited.url}/_sim/reset", {}).status == 200
    assert limited.stats()["admitted"] == 0
    assert post(chat_url(limited), CHAT).status == 200


def test_anthropic_quota_headers_and_sdk_error(limited: Simulator) -> None:
    claude = anthropic.Anthropic(base_url=f"{limited.url}/anthropic", api_key="k", max_retries=0)
    first = claude.messages.with_raw_response.create(model=CLAUDE, max_tokens=8, messages=MESSAGES)
    assert first.headers["anthropic-ratelimit-requests-limit"] == "5"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "4"
    assert first.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    for _ in range(4):
        claude.messages.create(model=CLAUDE, max_tokens=8, messages=MESSAGES)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=CLAUDE, max_tokens=8, messages=MESSAGES)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "12"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    body: Any = caught.value.body
    assert body["error"]["type"] == "rate_limit_error" and "of 5 requests" in str(body)


def test_gemini_429_carries_retry_info(limited: Simulator) -> None:
    options = types.HttpOptions(base_url=f"{limited.url}/gemini", api_version="v1beta")
    client = genai.Client(api_key="g", http_options=options)
    for _ in range(5):
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 429
    details = caught.value.details["error"]["details"]
    retry = next(d for d in details if d["@type"].endswith("RetryInfo"))
    assert retry["retryDelay"] == "12s"
    assert details[0]["violations"][0]["quotaValue"] == "5"


def test_tokens_quota_counts_prompt_plus_max_tokens(clock: FakeClock) -> None:
    with Simulator(SimulatorSettings(tpm=60), clock=clock) as sim:
        # "hello there" is 3 tokens; with max_tokens 27 a request costs 30 of the 60
        body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 27}
        answers = [post(chat_url(sim), body) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[0].headers["x-ratelimit-remaining-tokens"] == "30"
    rejected = answers[-1]
    assert rejected.headers["x-ratelimit-remaining-tokens"] == "0"
    assert rejected.headers["retry-after"] == "30"
    assert "(TPM): Limit 60, Used 60, Requested 30" in json.dumps(rejected.json())


def test_a_rejected_request_leaves_programmed_faults_alone(
    limited: Simulator, clock: FakeClock
) -> None:
    for _ in range(5):
        post(chat_url(limited), CHAT)
    limited.program("server_error", model="gpt-4o-mini")
    assert post(chat_url(limited), CHAT).status == 429
    clock.advance(12)
    assert post(chat_url(limited), CHAT).status == 500  # admitted, then the fault
    assert limited.stats()["by_model"]["gpt-4o-mini"] == {"admitted": 6, "rate_limited": 1}
