"""Model names, checked per provider kind before anything is sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollhouse.errors import BadRequest
from tollhouse.providers import KINDS, Provider
from tollhouse.settings import ProviderSettings


def provider(kind: str) -> Provider:
    return KINDS[kind](ProviderSettings(kind, kind, "https://up.example/base"))


REAL = {
    "gemini": ["gemini-2.5-flash", "models/gemini-2.5-pro", "gemini-1.5-pro-002", "gemma_3"],
    "openai": ["gpt-4o-mini", "ft:gpt-4o-mini-2024-07-18:acme::AbC123", "o3"],
    "openrouter": ["openai/gpt-4o-mini", "meta-llama/llama-3-8b-instruct:free"],
    "openai-compatible": ["accounts/fireworks/models/x", "llama3.1:8b", "hf.co/u/m-GGUF:Q4_K_M"],
    "anthropic": ["claude-sonnet-4-5@20250929", "claude-opus-4-1"],
    "xai": ["grok-4", "grok-3-mini-beta"],
}


@pytest.mark.parametrize("kind", sorted(REAL))
def test_real_model_names_pass(kind: str) -> None:
    for model in REAL[kind]:
        provider(kind).check_model(model)


@pytest.mark.parametrize(
    ("kind", "model", "named"),
    [
        ("gemini", "gemini?key=x", "'?'"),
        ("gemini", "gemini#x", "'#'"),
        ("gemini", "x/../../evil", "'/'"),
        ("gemini", "gemini 2.5", "' '"),
        ("gemini", "a%2e%2e", "'%'"),
        ("gemini", "gemini@evil.example", "'@'"),
        ("gemini", "..", "'.' or '..'"),
        ("gemini", "...", "start with a letter or digit"),
        ("gemini", "models/.x", "start with a letter or digit"),
        ("openai", "gpt-4o?x=1", "'?'"),
        ("openai", "gpt\n4o", "'\\n'"),
        ("openrouter", "openai/../x", "'.' or '..'"),
        ("openrouter", "/openai/x", "'.' or '..'"),
        ("anthropic", "claude\\x", "'\\\\'"),
    ],
)
def test_bad_names_are_refused_naming_the_character(kind: str, model: str, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        provider(kind).check_model(model)
    message = caught.value.message
    assert named in message and "e.g." in message and caught.value.status == 400


def test_length_is_bounded() -> None:
    provider("openai").check_model("m" * 256)
    with pytest.raises(BadRequest, match="1 to 256"):
        provider("openai").check_model("m" * 257)
    with pytest.raises(BadRequest, match="1 to 256"):
        provider("gemini").check_model("")


@given(st.sampled_from(sorted(REAL)), st.text(max_size=40))
def test_an_accepted_name_is_plain(kind: str, model: str) -> None:
    try:
        provider(kind).check_model(model)
    except BadRequest:
        return
    assert model.isascii() and model.isprintable()
    assert not set(model) & set("?#%&= \\\"'<>")
    assert all(part not in ("", ".", "..") for part in model.split("/"))
    if kind == "gemini":
        assert "/" not in model.removeprefix("models/") and ":" not in model
