"""Pin the clock the OpenAI encoders read for ``created`` (the only clock in translation)."""

from __future__ import annotations

import pytest

from tollhouse.translate import openai_chat, openai_responses

NOW = 1_800_000_000


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_chat, "unix_time", lambda: NOW)
    monkeypatch.setattr(openai_responses, "unix_time", lambda: NOW)
