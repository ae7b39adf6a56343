"""Preparing a request for a route, without the stack: same dialect or translated."""

from __future__ import annotations

import json
import time

from tollhouse.gateway.models import Outgoing, Route
from tollhouse.gateway.prepare import prepare
from tollhouse.ingress import DIALECTS
from tollhouse.providers import build_providers
from tollhouse.settings import parse_settings

PROVIDERS = {
    p.name: p
    for p in build_providers(
        parse_settings(
            {
                "providers": [
                    {"name": "openai", "kind": "openai", "base_url": "http://up.test/v1"},
                    {"name": "anthropic", "kind": "anthropic", "base_url": "http://up.test"},
                    {"name": "gemini", "kind": "gemini", "base_url": "http://up.test"},
                ]
            }
        ).providers
    )
}
HEADERS = {
    "Content-Type": "application/json",
    "OpenAI-Organization": "org-1",
    "X-Stainless-Lang": "python",
    "X-Custom": "kept",
}


def chat(model: str, stream: bool = False) -> Outgoing:
    dialect = DIALECTS["openai-chat"]
    payload: dict[str, object] = {
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    call = dialect.call("/v1/chat/completions", {}, payload)
    body = json.dumps(payload).encode()
    return Outgoing(
        dialect, call, payload, body, "POST", "", HEADERS, None, "acme", time.monotonic() + 9
    )


def test_same_dialect_same_model_sends_the_clients_bytes_untouched() -> None:
    out = chat("gpt-a")
    prepared = prepare(out, Route(PROVIDERS["openai"], "gpt-a", "openai-chat"))
    assert prepared.body is out.body and prepared.path == "/v1/chat/completions"
    assert prepared.headers is out.headers and not prepared.hide_usage


def test_a_stream_asks_for_usage_and_hides_the_chunk_the_client_did_not_ask_for() -> None:
    prepared = prepare(
        chat("gpt-a", stream=True), Route(PROVIDERS["openai"], "gpt-a", "openai-chat")
    )
    assert prepared.hide_usage
    assert json.loads(prepared.body)["stream_options"] == {"include_usage": True}


def test_translated_to_anthropic_goes_to_its_path_with_its_headers_only() -> None:
    prepared = prepare(chat("smart"), Route(PROVIDERS["anthropic"], "claude-x", "anthropic"))
    assert (prepared.path, prepared.query) == ("/v1/messages", "")
    names = {k.lower() for k in prepared.headers}
    assert "anthropic-version" in names and "x-custom" in names
    assert not any(n.startswith(("openai-", "x-stainless-")) for n in names)
    body = json.loads(prepared.body)
    assert body["model"] == "claude-x" and body["messages"][0]["role"] == "user"


def test_translated_to_gemini_puts_the_model_and_action_in_the_url() -> None:
    prepared = prepare(chat("smart", stream=True), Route(PROVIDERS["gemini"], "gem-1", "gemini"))
    assert prepared.path == "/v1beta/models/gem-1:streamGenerateContent"
    assert prepared.query == "alt=sse"


def test_translated_to_openai_chat_asks_for_usage_in_its_stream() -> None:
    dialect = DIALECTS["anthropic"]
    payload: dict[str, object] = {
        "model": "smart",
        "max_tokens": 10,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    call = dialect.call("/v1/messages", {}, payload)
    out = Outgoing(dialect, call, payload, b"", "POST", "", {}, None, "acme", time.monotonic())
    prepared = prepare(out, Route(PROVIDERS["openai"], "gpt-a", "openai-chat"))
    assert prepared.path == "/v1/chat/completions"
    assert json.loads(prepared.body)["stream_options"] == {"include_usage": True}
