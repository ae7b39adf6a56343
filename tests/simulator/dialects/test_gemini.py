"""Gemini generateContent / streamGenerateContent, driven with google-genai."""

from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import errors, types

from tollhouse.simulator import Simulator

from ..helpers import long_text, post, sse_events

NO_THINKING = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
BODY = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}


def test_generate_content_shape_and_usage(sim: Simulator, gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model="gemini-2.5-flash", contents="hello there", config=NO_THINKING
    )
    assert response.text and response.text.endswith("pen.")
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == "gemini-2.5-flash"
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (
        3,
        16,
        19,
    )
    assert usage.thoughts_token_count is None
    [bill] = sim.bills()
    assert bill["id"] == response.response_id and bill["dialect"] == "gemini"
    assert bill["auth"] == "x-goog-api-key" and bill["model"] == "gemini-2.5-flash"


def test_thinking_models_bill_thoughts_as_output(sim: Simulator, gemini: genai.Client) -> None:
    response = gemini.models.generate_content(model="gemini-2.5-flash", contents="hello there")
    usage = response.usage_metadata
    assert usage and usage.thoughts_token_count == 32 and usage.candidates_token_count == 16
    assert usage.total_token_count == 3 + 16 + 32
    bill = sim.bills()[0]["usage"]
    assert (bill["output_tokens"], bill["reasoning_tokens"]) == (48, 32)


def test_thinking_budget_caps_thoughts(gemini: genai.Client) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=10))
    response = gemini.models.generate_content(
        model="gemini-2.0-flash", contents="hi", config=config
    )
    assert response.usage_metadata and response.usage_metadata.thoughts_token_count == 10


def test_sse_stream_carries_running_usage(sim: Simulator, gemini: genai.Client) -> None:
    chunks = list(
        gemini.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hello there", config=NO_THINKING
        )
    )
    assert len(chunks) == 4
    counts = [c.usage_metadata.candidates_token_count for c in chunks if c.usage_metadata]
    assert counts == [4, 8, 12, 16]
    assert (
        chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    )
    assert all(c.response_id == chunks[0].response_id for c in chunks)
    [bill] = sim.bills()
    assert bill["id"] == chunks[0].response_id and bill["stream"] and bill["complete"]


def test_raw_sse_uses_crlf_framing(sim: Simulator) -> None:
    raw = post(f"{sim.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", BODY)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.body.startswith(b"data: {") and raw.body.endswith(b"}\r\n\r\n")
    assert len(sse_events(raw.body)) == 4


def test_stream_without_alt_is_a_json_array(sim: Simulator) -> None:
    raw = post(f"{sim.url}/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent", BODY)
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.body.startswith(b"[{") and b"},\r\n{" in raw.body and raw.body.endswith(b"}]")
    chunks = json.loads(raw.body)
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in chunks] == [4, 8, 12, 16]
    assert all("modelVersion" in c and "responseId" in c for c in chunks)


def test_models_prefix_and_v1_paths_are_accepted(sim: Simulator) -> None:
    raw = post(f"{sim.url}/gemini/v1/models/gemini-2.0-flash:generateContent?key=abc", BODY)
    assert raw.status == 200 and raw.json()["modelVersion"] == "gemini-2.0-flash"
    assert sim.bills()[0]["auth"] == "query"


def test_implicit_cache_on_repeated_system_instruction(
    sim: Simulator, gemini: genai.Client
) -> None:
    config = types.GenerateContentConfig(
        system_instruction=long_text(3000), thinking_config=types.ThinkingConfig(thinking_budget=0)
    )
    for _ in range(2):
        response = gemini.models.generate_content(
            model="gemini-2.5-flash", contents="hello there", config=config
        )
    usage = response.usage_metadata
    assert usage and usage.cached_content_token_count == 2944 and usage.prompt_token_count == 3003
    assert sim.bills()[1]["usage"]["cached_input_tokens"] == 2944


def test_long_context_tier_price(sim: Simulator) -> None:
    big = {"contents": [{"role": "user", "parts": [{"text": long_text(250_000)}]}]}  # 1 MB
    raw = post(
        f"{sim.url}/gemini/v1beta/models/gemini-2.5-pro:generateContent",
        big,
        {"x-sim-reasoning-tokens": "0"},
    )
    assert raw.json()["usageMetadata"]["promptTokenCount"] == 250_000
    import genai_prices

    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=250_000, output_tokens=16),
        "gemini-2.5-pro",
        provider_id="google",
    ).total_price
    assert sim.bills()[0]["cost_usd"] == format(expected, "f")


@pytest.mark.parametrize(
    ("spec", "code", "status"),
    [
        ("rate_limit", 429, "RESOURCE_EXHAUSTED"),
        ("overloaded", 503, "UNAVAILABLE"),
        ("not_found", 404, "NOT_FOUND"),
        ("server_error", 500, "INTERNAL"),
    ],
)
def test_faults_raise_api_errors(
    sim: Simulator, gemini: genai.Client, spec: str, code: int, status: str
) -> None:
    sim.program(spec)
    with pytest.raises(errors.APIError) as caught:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (caught.value.code, caught.value.status) == (code, status)


def test_rate_limit_retry_delay(sim: Simulator, gemini: genai.Client) -> None:
    sim.program("rate_limit,retry_after=22")
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    details = caught.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"} in details


def test_stream_error_raises_mid_stream(sim: Simulator, gemini: genai.Client) -> None:
    sim.program("stream_error=2")
    texts = []
    with pytest.raises(errors.APIError) as caught:
        for chunk in gemini.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hi", config=NO_THINKING
        ):
            texts.append(chunk.text)
    assert caught.value.code == 503 and len(texts) == 2
    assert sim.bills()[0]["usage"]["output_tokens"] == 8


def test_cut_stream_bills_the_chunks_sent(sim: Simulator, gemini: genai.Client) -> None:
    sim.program("cut=1")
    seen = []
    with pytest.raises(Exception) as caught:  # the SDK lets httpx's error through
        for chunk in gemini.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hi", config=NO_THINKING
        ):
            seen.append(chunk.usage_metadata)
    assert "incomplete chunked read" in str(caught.value)
    [bill] = sim.bills()
    assert len(seen) == 1 and seen[0] and seen[0].candidates_token_count == 4
    assert bill["usage"]["output_tokens"] == 4 and not bill["complete"]
