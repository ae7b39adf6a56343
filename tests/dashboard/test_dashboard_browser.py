"""The dashboard in a real headless Chromium (Playwright driving Debian's chromium).

Every test ends with a full-page screenshot under test-artifacts/dashboard/,
and fails on any console error, page error or dialog (an alert() would mean
the seeded XSS payloads ran).
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

import pytest

from tests.dashboard.conftest import ARTIFACTS, XSS_PROJECT, XSS_TAG, Dash


def ledger_cost(dash: Dash, where: str = "1=1", params: tuple[Any, ...] = ()) -> Decimal:
    conn = sqlite3.connect(dash.ledger)
    rows = conn.execute(
        f"SELECT cost_usd FROM requests WHERE cost_usd IS NOT NULL AND {where}", params
    )
    total = sum((Decimal(c) for (c,) in rows), Decimal(0))
    conn.close()
    return total


def ready(page: Any) -> None:
    page.wait_for_function("() => window.tollhouse && window.tollhouse.ready === true")


def chart_totals(page: Any) -> dict[str, float]:
    return page.evaluate(
        """() => {
          const u = window.tollhouse.charts.chart;
          const out = {};
          u.series.slice(1).forEach((s, i) => {
            out[s.label] = u.data[i + 1].reduce((a, b) => a + b, 0);
          });
          return out;
        }"""
    )


def count_is(page: Any, text: str) -> None:
    page.wait_for_function(
        "t => document.getElementById('request-count').textContent === t", arg=text
    )


def no_problems(page: Any) -> None:
    assert page.problems == [], page.problems


def test_overview_renders_the_seeded_ledger(dash: Dash, page: Any) -> None:
    page.goto(dash.url)
    ready(page)
    assert "token=" not in page.url  # swapped for a cookie, out of the address bar
    totals = chart_totals(page)
    for project in ("acme", "globex", XSS_PROJECT):
        expected = ledger_cost(dash, "project = ?", (project,))
        assert totals[project] == pytest.approx(float(expected)), project
    assert page.locator("#chart canvas").count() >= 1
    top = page.locator("#top-projects tbody tr").first
    assert top.locator("td").first.inner_text() == "globex"  # 5 x $0.021 beats 10 x $0.002
    totals_text = page.locator("#totals").inner_text()
    assert "$0.1270" in totals_text  # 5 x 0.021 + 11 x 0.002
    assert "Requests\n17" in totals_text and "Unpriced calls\n1" in totals_text
    assert "Failed calls\n0 (0.0 %)" in totals_text
    no_problems(page)


def test_tags_unpriced_budgets_commitments_trust_and_capacity(dash: Dash, page: Any) -> None:
    page.goto(dash.url)
    ready(page)
    tags = page.locator("#tags tbody tr")
    rows = {tags.nth(i).locator("td").first.inner_text(): tags.nth(i) for i in range(tags.count())}
    assert rows["bugfix"].locator("td").nth(2).inner_text() == "23.5 %"  # 4 of 17 requests
    assert XSS_TAG in rows  # shown as text, not run
    unpriced = page.locator("#unpriced tbody").inner_text()
    assert "mystery-1" in unpriced and "local" in unpriced
    assert "Over budget: acme" in page.locator("#budget-alerts").inner_text()
    assert "openai" in page.locator("#commitments").inner_text()
    trust = page.locator("#trust").inner_text()
    assert "\ntasks\t2\n" in trust and "degraded tasks\t1" in trust
    assert "held actions\t1" in trust and "cache validity miss rate\t25" in trust
    capacity = page.locator("#capacity").inner_text()
    assert "openai" in capacity and "anthropic" in capacity
    assert "Nothing ejected" in page.locator("#ejections").inner_text()
    no_problems(page)


def test_chart_by_model_and_drill_down_to_a_printable_project_report(dash: Dash, page: Any) -> None:
    page.goto(dash.url)
    ready(page)
    page.select_option("select[name=by]", "model")
    page.wait_for_function(
        "() => window.tollhouse.charts.chart.series[1].label === 'claude-sonnet-4-5'"
    )
    by_model = chart_totals(page)
    assert set(by_model) == {"claude-sonnet-4-5", "gpt-4o-mini", "mystery-1"}
    assert by_model["mystery-1"] == 0  # unpriced: counted, never a made-up cost
    page.locator("#top-projects a", has_text="acme").click()
    page.wait_for_url("**/project?name=acme*")
    ready(page)
    assert page.locator("#project-name").inner_text() == "acme"
    by_model = page.locator("#by-model tbody").inner_text()
    assert "gpt-4o-mini" in by_model and "claude" not in by_model
    assert page.locator("#tag-purpose").inner_text().count("bugfix") == 1
    assert chart_totals(page) == {"gpt-4o-mini": pytest.approx(0.02)}
    page.emulate_media(media="print")
    assert not page.locator("header").is_visible()  # the client report prints without chrome
    assert page.locator("#by-model").is_visible()
    page.pdf(path=str(ARTIFACTS / "acme-report.pdf"))
    no_problems(page)


def test_requests_table_filters(dash: Dash, page: Any) -> None:
    page.goto(dash.url)
    ready(page)
    page.goto(dash.base + "/requests?project=acme")
    ready(page)
    assert page.locator("#request-count").inner_text() == "10 requests"
    page.fill("input[name=tag]", "purpose=bugfix")
    page.click("button[type=submit]")
    count_is(page, "4 requests")
    page.fill("input[name=project]", "")
    page.fill("input[name=tag]", "")
    page.select_option("select[name=trust]", "degraded")
    page.click("button[type=submit]")
    count_is(page, "1 request")
    assert "globex" in page.locator("#requests tbody").inner_text()
    assert "trust=degraded" in page.url
    no_problems(page)


def test_seeded_markup_is_shown_as_text(dash: Dash, page: Any) -> None:
    page.goto(dash.url)
    ready(page)
    page.goto(dash.base + "/requests")
    ready(page)
    body = page.locator("#requests tbody").inner_text()
    assert XSS_PROJECT in body and XSS_TAG in body
    assert page.locator("#requests img").count() == 0
    assert page.locator("#requests script").count() == 0
    no_problems(page)


def test_a_single_day_of_spend_is_charted_over_that_day(dash: Dash, page: Any) -> None:
    page.goto(dash.url)  # the token, swapped for a cookie
    ready(page)
    page.goto(dash.base + "/project?name=initech")  # its one call, on one day
    ready(page)
    span = page.evaluate(
        "() => { const x = window.tollhouse.charts.chart.scales.x; return [x.min, x.max]; }"
    )
    assert 0 < span[1] - span[0] <= 86_400  # not a three-year axis around one point
    page.screenshot(path=str(ARTIFACTS / "single-day.png"), full_page=True)
    no_problems(page)
