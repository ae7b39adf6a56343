from __future__ import annotations

import pytest

from tollhouse.intercept.hosts import HostTable


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("api.openai.com", "openai"),
        ("API.OpenAI.com.", "openai"),
        ("api.anthropic.com", "anthropic"),
        ("generativelanguage.googleapis.com", "gemini"),
        ("aiplatform.googleapis.com", "gemini"),
        ("europe-west4-aiplatform.googleapis.com", "gemini"),
        ("api.x.ai", "xai"),
        ("openrouter.ai", "openrouter"),
        ("chatgpt.com", "openai"),
        ("cloudcode-pa.googleapis.com", "gemini"),
    ],
)
def test_known_llm_hosts(host: str, kind: str) -> None:
    assert HostTable.with_extras({}).kind_of(host) == kind


@pytest.mark.parametrize(
    "host", ["pypi.org", "github.com", "openai.com", "storage.googleapis.com", "x.ai", "", None]
)
def test_everything_else_is_tunneled(host: str | None) -> None:
    assert HostTable.with_extras({}).kind_of(host) is None


def test_config_adds_hosts() -> None:
    table = HostTable.with_extras({"LLM.corp.example": "openai-compatible"})
    assert table.kind_of("llm.corp.example") == "openai-compatible"
    assert table.kind_of("api.openai.com") == "openai"
