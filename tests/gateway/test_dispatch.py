"""Failover without the stack: the dispatcher over a MockTransport (no sockets).

Each test scripts what the providers answer and checks what was sent where,
how many times, and what the client is handed back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tollhouse.errors import MissingKey, NoCandidateServed, UpstreamUnavailable
from tollhouse.gateway.dispatch import Dispatch
from tollhouse.gateway.models import Answer, Outgoing, Route
from tollhouse.gateway.routing import Router
from tollhouse.ingress import DIALECTS
from tollhouse.providers import build_providers
from tollhouse.settings import parse_settings
from tollhouse.testing import MockResponse, SentRequest, mock_dispatcher

OK_CHAT = {
    "id": "c1",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
OK_ANTHROPIC = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_OPENAI_KEY", "sk-gateway-openai")
    monkeypatch.setenv("T_ANTHROPIC_KEY", "sk-gateway-anthropic")


def router() -> Router:
    settings = parse_settings(
        {
            "providers": [
                {
                    "name": "openai",
                    "kind": "openai",
                    "base_url": "http://up.test/v1",
                    "api_key_env": "T_OPENAI_KEY",
                },
                {
                    "name": "anthropic",
                    "kind": "anthropic",
                    "base_url": "http://up.test",
                    "api_key_env": "T_ANTHROPIC_KEY",
                },
            ],
            "models": {"smart": {"chain": ["openai/gpt-a", "anthropic/claude-x"]}},
        }
    )
    return Router(
        build_providers(settings.providers), {"smart": ("openai/gpt-a", "anthropic/claude-x")}
    )


def outgoing(model: str, key: str | None = None) -> Outgoing:
    dialect = DIALECTS["openai-chat"]
    payload: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    call = dialect.call("/v1/chat/completions", {}, payload)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Outgoing(
        dialect, call, payload, b"{}", "POST", "", headers, key, "acme", time.monotonic() + 30
    )


def dispatch(
    handler: Callable[[SentRequest], MockResponse], model: str, key: str | None = None
) -> tuple[Answer, Dispatch, list[SentRequest]]:
    r = router()
    dispatcher, transport = mock_dispatcher(handler)
    d = Dispatch(outgoing(model, key))
    answer = asyncio.run(
        dispatcher.dispatch(d, r.candidates(model, "openai-chat"), r.is_alias(model))
    )
    return answer, d, transport.sent


def by_provider(answers: dict[str, list[MockResponse]]) -> Callable[[SentRequest], MockResponse]:
    """Answer each provider's requests from its own script, in order."""

    def handle(sent: SentRequest) -> MockResponse:
        return answers[sent.provider].pop(0)

    return handle


def test_a_success_is_handed_back_from_the_primary_with_the_clients_own_key() -> None:
    answer, d, sent = dispatch(lambda s: MockResponse(200, OK_CHAT), "gpt-a", key="sk-client")
    assert answer.primary and answer.response.status == 200
    assert [s.url for s in sent] == ["http://up.test/v1/chat/completions"]
    assert sent[0].headers["Authorization"] == "Bearer sk-client"  # its own provider: its own key
    assert [(a.provider, a.status) for a in d.attempts] == [("openai", 200)]


def test_overload_is_retried_then_the_chain_falls_back_translated() -> None:
    script = by_provider(
        {
            "openai": [MockResponse(503, {"error": {"type": "overloaded"}})] * 3,
            "anthropic": [MockResponse(200, OK_ANTHROPIC)],
        }
    )
    answer, d, sent = dispatch(script, "smart", key="sk-client")
    assert not answer.primary and answer.route.provider.name == "anthropic"
    assert [s.provider for s in sent] == ["openai", "openai", "openai", "anthropic"]
    fallback = sent[-1]
    assert fallback.url == "http://up.test/v1/messages"  # translated into Anthropic's dialect
    assert fallback.headers["x-api-key"] == "sk-gateway-anthropic"  # the client's key stays home
    assert "sk-client" not in str(fallback.headers)
    assert fallback.json()["model"] == "claude-x"
    assert [a.error_class for a in d.attempts] == ["overloaded"] * 3 + [None]


def test_a_client_error_is_never_retried_nor_failed_over() -> None:
    answer, d, sent = dispatch(
        lambda s: MockResponse(400, {"error": {"type": "invalid_request_error"}}), "smart"
    )
    assert answer.response.status == 400 and answer.primary
    assert len(sent) == 1 and len(d.attempts) == 1


def test_a_model_gone_falls_back_at_once_and_is_skipped_next_time() -> None:
    r = router()
    script = by_provider(
        {
            "openai": [MockResponse(404, {"error": {"code": "model_not_found"}})],
            "anthropic": [MockResponse(200, OK_ANTHROPIC), MockResponse(200, OK_ANTHROPIC)],
        }
    )
    dispatcher, transport = mock_dispatcher(script)

    async def twice() -> list[Dispatch]:
        runs = []
        for _ in range(2):
            d = Dispatch(outgoing("smart"))
            await dispatcher.dispatch(d, r.candidates("smart", "openai-chat"), True)
            runs.append(d)
        return runs

    first, second = asyncio.run(twice())
    assert [s.provider for s in transport.sent] == ["openai", "anthropic", "anthropic"]
    assert first.attempts[0].error_class == "model_gone"
    assert second.attempts[0].skipped is not None  # gone: not even tried


def test_a_lone_candidates_last_error_is_relayed_as_it_came_marked_given_up() -> None:
    answer, _, sent = dispatch(lambda s: MockResponse(503, {"error": {"type": "x"}}), "gpt-a")
    assert answer.response.status == 503 and answer.gave_up
    assert len(sent) == 3  # max_attempts


def test_a_chain_that_nothing_serves_names_each_candidate() -> None:
    def refuse(sent: SentRequest) -> MockResponse:
        raise UpstreamUnavailable("connection refused")

    with pytest.raises(NoCandidateServed) as err:
        dispatch(refuse, "smart")
    assert "openai/gpt-a" in err.value.message and "anthropic/claude-x" in err.value.message


def test_no_key_for_a_fallback_is_said_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_ANTHROPIC_KEY")
    monkeypatch.delenv("T_OPENAI_KEY")
    with pytest.raises(MissingKey) as err:
        dispatch(lambda s: MockResponse(200, OK_CHAT), "smart", key="sk-client")
    assert "T_OPENAI_KEY" in err.value.message or "T_ANTHROPIC_KEY" in err.value.message


def test_the_route_vocabulary_is_what_resolve_returns() -> None:
    route = router().resolve("anthropic/claude-x", "anthropic")
    assert route == Route(route.provider, "claude-x", "anthropic")
