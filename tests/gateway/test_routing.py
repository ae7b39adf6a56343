"""Model resolution: provider prefixes, and a typo'd one said back (issue 23, item 7)."""

from __future__ import annotations

import http.client
import json
from typing import Any

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ACME_KEY, Harness, base_config
from tollhouse.errors import UnknownModel
from tollhouse.gateway.routing import Router
from tollhouse.providers import build_providers
from tollhouse.settings import parse_settings


def _router(providers: list[dict[str, Any]]) -> Router:
    settings = parse_settings({"providers": providers})
    return Router(build_providers(settings.providers), {})


FIRST_PARTY = _router(base_config("http://127.0.0.1:9")["providers"])
AGGREGATOR_FIRST = _router(
    [p for p in base_config("http://127.0.0.1:9")["providers"] if p["kind"] == "openrouter"]
    + [p for p in base_config("http://127.0.0.1:9")["providers"] if p["kind"] == "openai"]
)


def test_a_named_provider_takes_the_rest_as_its_model() -> None:
    route = FIRST_PARTY.resolve("anthropic/claude-sonnet-4-5", "anthropic")
    assert (route.provider.name, route.model) == ("anthropic", "claude-sonnet-4-5")


def _codex_router() -> Router:
    providers = base_config("http://127.0.0.1:9")["providers"]
    openai_entry = next(p for p in providers if p["name"] == "openai")
    openai_entry["responses_models"] = ["gpt-5-codex"]
    settings = parse_settings({"providers": providers})
    chain = {"fused": ("anthropic/claude-sonnet-4-5", "openai/gpt-5-codex")}
    return Router(build_providers(settings.providers), chain)


@pytest.mark.parametrize("client", ["openai-chat", "openai-responses", "anthropic", "gemini"])
def test_a_responses_only_model_is_spoken_to_in_responses_for_any_client(client: str) -> None:
    router = _codex_router()
    fused = router.candidates("fused", client)
    assert [(r.provider.name, r.dialect) for r in fused] == [
        ("anthropic", "anthropic"),
        ("openai", "openai-responses"),
    ]
    assert router.resolve("openai/gpt-5-codex", client).dialect == "openai-responses"
    assert router.resolve("openai/gpt-4o", "openai-chat").dialect == "openai-chat"


def test_an_unprefixed_responses_only_model_is_translated_for_a_chat_client() -> None:
    route = _codex_router().resolve("gpt-5-codex", "openai-chat")
    assert (route.provider.name, route.dialect) == ("openai", "openai-responses")


@pytest.mark.parametrize("typo", ["opneai", "openi", "anthropc", "gemnii"])
def test_a_prefix_a_letter_off_a_provider_is_said_back(typo: str) -> None:
    with pytest.raises(UnknownModel) as err:
        FIRST_PARTY.resolve(f"{typo}/gpt-4o", "openai-chat")
    assert "did you mean" in err.value.message and typo in err.value.message


def test_an_aggregators_own_vendor_names_are_not_typos() -> None:
    """OpenRouter's 'x-ai/grok-3' is close to a provider called 'xai', and is its name."""
    route = AGGREGATOR_FIRST.resolve("x-ai/grok-3", "openai-chat")
    assert (route.provider.name, route.model) == ("openrouter", "x-ai/grok-3")


@given(st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True))
def test_a_prefix_far_from_every_name_goes_to_the_default_provider(prefix: str) -> None:
    names = {"openai", "anthropic", "gemini", "xai", "openrouter", "local"}
    from difflib import get_close_matches

    model = f"{prefix}/m"
    if prefix in names or get_close_matches(prefix, names, n=1, cutoff=0.75):
        return
    route = FIRST_PARTY.resolve(model, "openai-chat")
    assert (route.provider.name, route.model) == ("openai", model)


def test_the_sdk_gets_a_404_naming_the_fix(gateway: Harness) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=ACME_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(
            model="opneai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert "did you mean 'openai/gpt-4o'" in str(err.value)
    row = gateway.last()
    assert row["status"] == 404 and row["project"] == "acme"


def test_every_answer_says_who_was_charged(gateway: Harness) -> None:
    """Answers and the gateway's own errors both name the project and the rule that chose it."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=ACME_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["X-Tollhouse-Project"] == "acme; by=key"
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(
            model="opneai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.response.headers["X-Tollhouse-Project"] == "acme; by=key"
    # A header in bytes that aren't ASCII (latin-1 'café', as http.client sends it).
    conn = http.client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=30)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    headers = {"Content-Type": "application/json", "X-Tollhouse-Project": "café"}
    conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
    answer = conn.getresponse()
    charged = answer.getheader("X-Tollhouse-Project") or ""
    assert answer.status == 200 and charged.isascii() and charged.startswith("caf%")
    assert charged.endswith("; by=header")
    conn.close()
