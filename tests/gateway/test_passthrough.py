"""Unmetered endpoints go through as they are, in the client's dialect."""

from __future__ import annotations

from tests.conftest import Harness
from tests.test_metering_e2e import an, oa


def test_openai_models_list(gateway: Harness) -> None:
    models = oa(gateway).models.list()
    assert any(m.id for m in models.data)


def test_anthropic_count_tokens(gateway: Harness) -> None:
    counted = an(gateway).messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "count me please"}]
    )
    assert counted.input_tokens > 0
    assert gateway.rows() == []  # token counting is free and not metered
