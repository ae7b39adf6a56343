"""The dashboard at desktop and phone widths, in Chromium: no sideways scroll, every
card and table drawn, money in one precision, a 30-day chart on a day axis (issue 23,
item 11). Each width leaves a screenshot under test-artifacts/dashboard/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Dash

WIDTHS = {"desktop": (1400, 1000), "laptop": (1024, 768), "phone": (390, 844)}


@pytest.fixture(params=sorted(WIDTHS))
def sized(browser: Any, request: pytest.FixtureRequest) -> Any:
    width, height = WIDTHS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield request.param, page, problems
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"width-{request.param}.png"), full_page=True)
    context.close()


def test_no_sideways_scroll_and_everything_drawn(dash: Dash, sized: Any) -> None:
    name, page, problems = sized
    page.goto(dash.url)
    page.wait_for_function("() => window.tollhouse && window.tollhouse.ready === true")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
    cards = page.locator("#totals .card .value").all_text_contents()
    assert len(cards) >= 6 and all(c and c != "—" for c in cards[:2]), cards
    assert page.locator("#chart canvas").count() == 1
    assert problems == []


def test_money_has_one_precision(dash: Dash, page: Any) -> None:
    page.goto(dash.url)
    page.wait_for_function("() => window.tollhouse && window.tollhouse.ready === true")
    shown = page.locator("td.num, .card .value").all_text_contents()
    amounts = [s for s in shown if s.startswith(("$", "<$"))]
    assert amounts, shown
    for amount in amounts:  # four decimals below $1,000; cents above; never 1e-5 notation
        assert re.fullmatch(r"<?\$\d{1,3}(,\d{3})*\.\d{4}|\$\d{1,3}(,\d{3})+\.\d{2}", amount), (
            amount
        )


def test_a_30_day_chart_spans_the_window_on_a_day_axis(dash: Dash, page: Any) -> None:
    page.goto(dash.url)  # 30 days is the default period
    page.wait_for_function("() => window.tollhouse && window.tollhouse.ready === true")
    span = page.evaluate(
        "() => { const s = window.tollhouse.charts.chart.scales.x; return s.max - s.min; }"
    )
    assert span >= 29 * 86400  # the whole window, not the few days that had spend


def test_a_plain_headless_chromium_sees_the_numbers_at_load(dash: Dash, tmp_path: Path) -> None:
    """No waiting, no script: chromium --dump-dom prints the page as it is at its load
    event. The overview's first view comes inside the page, so the numbers are there."""
    done = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_ARGS,
            "--headless",
            f"--user-data-dir={tmp_path}",
            "--dump-dom",
            dash.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    spend = re.search(r'<span class="label">Spend</span><span class="value">([^<]+)</span>', dom)
    assert spend is not None and spend.group(1).startswith("$"), dom[:2000]
    assert '<div class="uplot' in dom  # the chart is drawn
