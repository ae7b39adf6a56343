"""Routing per flavor, model lists and the /_sim control endpoints."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tollhouse.simulator import Simulator

from .helpers import Raw, get, post

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "claude-haiku-4-5",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi"}],
}
GEMINI = {"contents": [{"parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize(
    ("path", "body", "flavor", "dialect"),
    [
        ("/v1/chat/completions", CHAT, "openai", "openai-chat"),
        ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}, "openai", "openai-responses"),
        ("/v1/messages", MESSAGES, "anthropic", "anthropic"),
        ("/v1beta/models/gemini-2.5-flash:generateContent", GEMINI, "gemini", "gemini"),
        ("/xai/v1/chat/completions", CHAT, "xai", "openai-chat"),
        (
            "/openrouter/v1/responses",
            {"model": "x", "input": "hi"},
            "openrouter",
            "openai-responses",
        ),
        ("/compat/v1/chat/completions", CHAT, "compat", "openai-chat"),
        ("/anthropic/v1/messages", MESSAGES, "anthropic", "anthropic"),
    ],
)
def test_routes_pick_flavor_and_dialect(
    sim: Simulator, path: str, body: dict[str, object], flavor: str, dialect: str
) -> None:
    assert post(sim.url + path, body).status == 200
    [bill] = sim.bills()
    assert (bill["flavor"], bill["dialect"]) == (flavor, dialect)


def test_models_prefix_is_stripped_from_model_names(sim: Simulator) -> None:
    post(f"{sim.url}/compat/v1/chat/completions", {**CHAT, "model": "models/gemma-3"})
    assert sim.bills()[0]["model"] == "gemma-3"


def test_dialects_are_only_served_by_their_flavors(sim: Simulator) -> None:
    assert post(f"{sim.url}/anthropic/v1/chat/completions", CHAT).status == 404
    assert post(f"{sim.url}/openai/v1/messages", MESSAGES).status == 404
    assert post(f"{sim.url}/v1beta/models/gemini-2.5-flash:embedContent", GEMINI).status == 404


def test_openai_style_model_lists(sim: Simulator) -> None:
    listing = get(f"{sim.url}/xai/v1/models").json()
    assert listing["object"] == "list"
    assert {"id": "grok-4", "object": "model", "created": 1_700_000_000, "owned_by": "xai"} in (
        listing["data"]
    )
    assert "gpt-4o-mini" in [m["id"] for m in get(f"{sim.url}/v1/models").json()["data"]]


def test_anthropic_and_gemini_model_lists(sim: Simulator) -> None:
    claude = get(f"{sim.url}/anthropic/v1/models").json()
    assert claude["data"][0]["type"] == "model" and claude["has_more"] is False
    gemini = get(f"{sim.url}/gemini/v1beta/models").json()
    assert "models/gemini-2.5-pro" in [m["name"] for m in gemini["models"]]


def test_control_endpoints(sim: Simulator) -> None:
    programmed = post(f"{sim.url}/_sim/faults", {"fault": "server_error", "count": 3})
    assert programmed.json() == {"pending": 3}
    assert post(f"{sim.url}/v1/chat/completions", CHAT).status == 500
    cleared = _send(urllib.request.Request(f"{sim.url}/_sim/faults", method="DELETE"))
    assert cleared.json() == {"pending": 0}
    assert post(f"{sim.url}/v1/chat/completions", CHAT).status == 200
    assert [b["status"] for b in get(f"{sim.url}/_sim/bills").json()] == [500, 200]
    assert post(f"{sim.url}/_sim/reset", {}).status == 200
    assert sim.bills() == []


def test_control_endpoint_rejects_bad_specs(sim: Simulator) -> None:
    assert post(f"{sim.url}/_sim/faults", {"fault": "explode"}).status == 400
    assert post(f"{sim.url}/_sim/faults", {"count": 2}).status == 400


def test_large_bodies_are_accepted(sim: Simulator) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 3_000_000}]}
    raw = post(f"{sim.url}/v1/chat/completions", big)
    assert raw.status == 200 and raw.json()["usage"]["prompt_tokens"] == 750_000


def _send(request: urllib.request.Request) -> Raw:
    with urllib.request.urlopen(request, timeout=30) as response:
        return Raw(response.status, dict(response.headers), response.read())


def test_count_tokens_rejects_bad_json(sim: Simulator) -> None:
    raw = post(f"{sim.url}/anthropic/v1/messages/count_tokens", b"[1")
    assert raw.status == 400 and json.loads(raw.body)["type"] == "error"
