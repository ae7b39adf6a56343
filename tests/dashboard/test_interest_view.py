"""The dashboard's principal-vs-interest view over a scripted repository and ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY_ENV, PROVIDER_KEY, base_config
from tests.dashboard.conftest import Dash
from tests.dashboard.test_dashboard_http import get
from tests.interest.scripted import TEN, ScriptedLedger, ScriptedRepo, day
from tollhouse.app import create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

FIVE = [f"ai {i}\n" for i in range(1, 6)]


@pytest.fixture
def interest_dash(
    tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Dash, ScriptedRepo]]:
    """January: 1.25 of calls land on an AI-assisted commit; a week later 0.50 lands on a
    commit rewriting 2 of its lines. February: 0.40 tagged bugfix, not landed yet."""
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    repo = ScriptedRepo(tmp_path / "app")
    c0 = repo.commit(day(0), "start", {"a.py": TEN})
    ledger = ScriptedLedger(tmp_path / "ledger.db", repo.root_commit())
    ledger.call(day(0.5), "1.25", c0)
    c1 = repo.commit(day(1), "feature", {"a.py": [*TEN, *FIVE]})
    ledger.call(day(8), "0.50", c1)
    c2 = repo.commit(day(8.5), "fix", {"a.py": [*TEN, "x\n", "y\n", *FIVE[2:]]})
    ledger.call(day(30), "0.40", c2, purpose="bugfix")
    config = base_config(simulator.url)
    token_file = tmp_path / "home" / "dashboard.token"
    config["dashboard"] = {"port": 0, "token_file": str(token_file)}
    config["interest"] = {"repos": [str(repo.root)], "cache_dir": str(tmp_path / "cache")}
    settings = parse_settings(config)
    server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger.path, dashboard=True))
    server.start()
    try:
        yield Dash(server, ledger.path, token_file.read_text().strip(), token_file), repo
    finally:
        server.stop()


def test_the_api_gives_each_repository_and_the_months(
    interest_dash: tuple[Dash, ScriptedRepo],
) -> None:
    dash, repo = interest_dash
    status, _, body = get(
        f"{dash.base}/api/interest?since=all", Authorization=f"Bearer {dash.token}"
    )
    assert status == 200
    view = json.loads(body)
    [found] = view["repos"]
    assert (found["repo_id"], found["principal_usd"], found["interest_usd"]) == (
        repo.root_commit(),
        "1.25",
        "0.9",
    )
    assert (found["rewritten_lines"], found["ai_lines"]) == (2, 7)
    assert view["months"] == [
        {"month": "2026-01", "principal_usd": "1.25", "interest_usd": "0.5", "rate": "0.4"},
        {"month": "2026-02", "principal_usd": "0", "interest_usd": "0.4", "rate": None},
    ]
    status, _, _ = get(f"{dash.base}/api/interest?since=all")
    assert status == 401


def test_the_page_plots_principal_against_interest(
    interest_dash: tuple[Dash, ScriptedRepo], page: Any
) -> None:
    dash, _ = interest_dash
    page.goto(dash.url + "&since=all")
    page.wait_for_function("() => window.tollhouse && window.tollhouse.ready === true")
    page.wait_for_function("() => window.tollhouse.charts['interest-chart'] !== undefined")
    plotted = page.evaluate(
        """() => {
          const u = window.tollhouse.charts['interest-chart'];
          return u.series.slice(1).map((s, i) => [s.label, u.data[i + 1]]);
        }"""
    )
    assert plotted == [["principal", [1.25, 0]], ["interest", [0.5, 0.4]]]
    rows = page.locator("#interest-rework tbody tr").all_inner_texts()
    assert len(rows) == 1 and "$0.5000" in rows[0]
    assert page.problems == [], page.problems
