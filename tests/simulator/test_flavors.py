from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest

from tollhouse.simulator import flavors
from tollhouse.simulator.billing import Tally, list_price
from tollhouse.simulator.flavors import FLAVORS

WHEN = datetime.now(UTC)
TALLY = Tally(input_tokens=1234, cached_input_tokens=256, output_tokens=77, reasoning_tokens=11)


def test_list_price_uses_genai_prices_with_totals_including_parts() -> None:
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1234, cache_read_tokens=256, output_tokens=77),
        "gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert list_price(TALLY, "gpt-4o-mini", "openai", WHEN) == expected


def test_unknown_models_have_no_price() -> None:
    assert FLAVORS["openai"].cost(TALLY, "no-such-model", WHEN) is None


def test_compat_is_a_local_model_without_cost() -> None:
    assert FLAVORS["compat"].cost(TALLY, "gpt-4o-mini", WHEN) is None
    assert FLAVORS["compat"].usage_fields(None) == {}


def test_xai_bills_whole_ticks() -> None:
    cost = FLAVORS["xai"].cost(Tally(input_tokens=3, output_tokens=1), "grok-3-mini", WHEN)
    assert cost is not None
    ticks = FLAVORS["xai"].usage_fields(cost)["cost_in_usd_ticks"]
    assert isinstance(ticks, int)
    assert Decimal(ticks) / Decimal(10**10) == cost


def test_xai_rounds_sub_tick_prices_to_the_nearest_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flavors, "list_price", lambda *args: Decimal("0.00000000015"))
    cost = FLAVORS["xai"].cost(TALLY, "grok-4", WHEN)
    assert cost == Decimal("0.0000000002")
    assert FLAVORS["xai"].usage_fields(cost) == {"cost_in_usd_ticks": 2}


def test_openrouter_reports_the_billed_decimal() -> None:
    cost = FLAVORS["openrouter"].cost(TALLY, "openai/gpt-4o-mini", WHEN)
    assert cost is not None and cost > 0
    assert FLAVORS["openrouter"].usage_fields(cost)["cost"] == cost
