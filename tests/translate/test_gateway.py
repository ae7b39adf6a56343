"""Issue 16 through the real gateway and the official SDKs: the client sees what
translation left out (``X-Tollhouse-Translation-Omitted``), a failed generation
as an error, and trust ``verify`` re-runs a Gemini client's step on its primary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import ACME_KEY, KEY_ENV, GatewayFactory, Harness, base_config
from tests.translate.capture import CAPTURE, CaptureState, capture_app
from tests.translate.corpus import GEMINI_FAILS
from tollhouse.agent import Task
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer


@pytest.fixture
def capture() -> Iterator[BackgroundServer]:
    with BackgroundServer(capture_app) as server:
        yield server


def _state(capture: BackgroundServer) -> CaptureState:
    assert capture.app is not None
    return capture.app[CAPTURE]


def _gateway(
    make_gateway: GatewayFactory, simulator: Simulator, capture: BackgroundServer
) -> Harness:
    config = base_config(simulator.url)
    config["providers"] += [
        {
            "name": "cap-anthropic",
            "kind": "anthropic",
            "base_url": capture.url + "/anthropic",
            "api_key_env": KEY_ENV,
        },
        {
            "name": "cap-gemini",
            "kind": "gemini",
            "base_url": capture.url + "/gemini",
            "api_key_env": KEY_ENV,
        },
    ]
    config["models"] = {
        "claude": {"chain": ["cap-anthropic/claude-opus-4-8"]},
        "flash": {"chain": ["cap-gemini/gemini-2.5-flash"]},
    }
    return make_gateway(config)


def test_an_openai_client_is_told_what_claude_did_not_take(
    make_gateway: GatewayFactory, simulator: Simulator, capture: BackgroundServer
) -> None:
    url = _gateway(make_gateway, simulator, capture).url
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=ACME_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], temperature=0.1, seed=3
    )
    assert raw.headers["x-tollhouse-translation-omitted"] == (
        "temperature (claude-opus-4-8 does not take it); seed (claude-opus-4-8 does not take it)"
    )
    sent = _state(capture).requests[-1].body
    assert "temperature" not in sent and "seed" not in sent
    plain = client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": "hi"}]
    )
    assert "x-tollhouse-translation-omitted" not in plain.headers


def _fail_gemini(capture: BackgroundServer) -> None:
    plain, stream = GEMINI_FAILS["gemini"]
    _state(capture).answer_with("gemini", plain=plain, stream=stream)


def test_a_failed_gemini_generation_raises_in_the_openai_sdk(
    make_gateway: GatewayFactory, simulator: Simulator, capture: BackgroundServer
) -> None:
    gw = _gateway(make_gateway, simulator, capture)
    _fail_gemini(capture)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError, match="MALFORMED_FUNCTION_CALL"):
        client.chat.completions.create(model="flash", messages=[{"role": "user", "content": "w"}])
    row = gw.last()
    assert (row["status"], row["error"]) == (502, "upstream:generation_failed")
    assert row["input_tokens"] == 12  # what Gemini billed is still metered
    stream = client.chat.completions.create(
        model="flash", messages=[{"role": "user", "content": "w"}], stream=True
    )
    with pytest.raises(openai.APIError, match="MALFORMED_FUNCTION_CALL"):
        for _ in stream:
            pass
    row = gw.last()  # no answer: the ledger, and so the trust cache, never takes it for one
    assert (row["stream"], row["error"], row["incomplete"]) == (1, "upstream:generation_failed", 1)


def test_a_failed_gemini_generation_raises_in_the_anthropic_sdk(
    make_gateway: GatewayFactory, simulator: Simulator, capture: BackgroundServer
) -> None:
    url = _gateway(make_gateway, simulator, capture).url
    _fail_gemini(capture)
    client = anthropic.Anthropic(base_url=url, api_key=ACME_KEY, max_retries=0)
    ask: dict[str, Any] = {
        "model": "flash",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "w"}],
    }
    with pytest.raises(anthropic.InternalServerError, match="MALFORMED_FUNCTION_CALL"):
        client.messages.create(**ask)
    failed = pytest.raises(anthropic.APIStatusError, match="MALFORMED_FUNCTION_CALL")
    with failed, client.messages.stream(**ask) as stream:
        stream.until_done()


PRIMARY = "gemini-2.5-flash"


def test_verify_reruns_a_gemini_clients_step_on_its_primary(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    """Issue 16 item 9: the model of a Gemini client lives in the URL, not the body."""
    config = base_config(faults.url)
    config["models"] = {"smart": {"chain": [f"gemini/{PRIMARY}", "openai/gpt-4o-mini"]}}
    config["capacity"] = {"max_attempts": 1}
    config["trust"] = {"divergence_sample": 0.0, "unknown_task": "allow"}
    gw = make_gateway(config)
    body = {"contents": [{"role": "user", "parts": [{"text": "next step"}]}]}
    with Task("gemini-verify", base_url=gw.url) as task:
        http = task.http_client()
        faults.program("server_error", count=1, model=PRIMARY)
        with task.step("1"):
            response = http.post(
                f"{gw.url}/v1beta/models/smart:generateContent",
                content=json.dumps(body),
                headers={"x-goog-api-key": ACME_KEY, "content-type": "application/json"},
            )
        assert response.status_code == 200
        assert response.headers["x-tollhouse-served-by"] == "openai/gpt-4o-mini"
        result = task.verify("1")
    assert result["verified"] is True
    assert result["served_by"] == f"gemini/{PRIMARY}"
    assert gw.row(result["request_id"])["status"] == 200
