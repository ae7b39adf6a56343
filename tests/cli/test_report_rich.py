"""`tollhouse report`: rich tables, --project with its budget, exports, budgets, commitments."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.dashboard.conftest import PRICES, seed_entries
from tollhouse.cli.main import cli
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing import Pricer
from tollhouse.settings import parse_settings

CONFIG = """
[projects.acme]
budget_daily_usd = 0.001
budget_mode = "hard"

[commitments.openai]
discount = 0.1
annual_usd = 1000
start = "2026-01-01"
"""


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "tollhouse.toml"
    config.write_text(CONFIG)
    ledger = tmp_path / "ledger.db"
    writer = LedgerWriter(ledger, Pricer(parse_settings({"prices": PRICES}).prices)).start()
    for entry in seed_entries(datetime.now(UTC)):
        writer.submit(entry)
    writer.flush()
    writer.close()
    return config, ledger


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["report", *args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_rich_table_with_totals(seeded: tuple[Path, Path]) -> None:
    config, ledger = seeded
    out = run("--ledger", str(ledger), "--config", str(config), "--by", "project", "--since", "30d")
    assert "Spend, " in out and "globex" in out and "───" in out  # a rich table
    assert "total" in out and "0.1270" in out  # 5 x 0.021 + 11 x 0.002


def test_project_report_shows_its_budget(seeded: tuple[Path, Path]) -> None:
    config, ledger = seeded
    out = run(
        "--ledger", str(ledger), "--config", str(config), "--project", "acme", "--by", "model"
    )
    assert "Spend of acme" in out and "gpt-4o-mini" in out and "claude" not in out
    assert "Budgets" in out and "daily" in out and "over" in out  # today's 0.004 > 0.001


def test_csv_export_to_a_file(seeded: tuple[Path, Path], tmp_path: Path) -> None:
    _config, ledger = seeded
    target = tmp_path / "spend.csv"
    args = ["--ledger", str(ledger), "--by", "project,model", "--format", "csv", "-o", str(target)]
    run(*args)
    rows = list(csv.DictReader(target.open()))
    assert {r["project"] for r in rows} >= {"acme", "globex", "initech"}
    result = CliRunner().invoke(cli, ["report", "--ledger", str(ledger), "-o", str(target)])
    assert result.exit_code == 1 and "--format csv" in result.output


def test_budgets_and_commitments_as_json(seeded: tuple[Path, Path]) -> None:
    config, ledger = seeded
    out = run(
        "--ledger",
        str(ledger),
        "--config",
        str(config),
        "--budgets",
        "--commitments",
        "--format",
        "json",
    )
    found = json.loads(out)
    [budget] = found["budgets"]
    assert (budget["project"], budget["mode"], budget["over"]) == ("acme", "hard", True)
    [deal] = found["commitments"]
    assert deal["provider"] == "openai" and deal["annual_usd"] == "1000"
    assert Decimal(deal["spent_usd"]) == Decimal(
        "0.022"
    )  # every seeded openai call (overrides: no discount)
    table = run("--ledger", str(ledger), "--config", str(config), "--commitments")
    assert "Commitments" in table and "run-rate" in table


def test_nothing_configured_names_the_config_table(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    LedgerWriter(ledger, Pricer({})).start().close()
    config = tmp_path / "empty.toml"
    config.write_text("")
    out = run("--ledger", str(ledger), "--config", str(config), "--budgets", "--commitments")
    assert "[projects.NAME] budget_daily_usd" in out  # not eaten as rich markup
    assert "[commitments.PROVIDER] discount" in out


def test_names_are_not_rich_markup() -> None:
    from rich.console import Console

    from tollhouse.cli.tables import spend

    row = {"project": "[/oops][bold]x", "requests": 1, "cost_usd": "0.5"}
    row.update(
        dict.fromkeys(
            [
                "errors",
                "input_tokens",
                "cached_input_tokens",
                "cache_write_tokens",
                "output_tokens",
                "reasoning_tokens",
                "unpriced_requests",
                "unmetered_requests",
            ],
            0,
        )
    )
    console = Console(width=200, record=True)
    console.print(spend([row], ["project"], "t"))
    assert "[/oops][bold]x" in console.export_text()


def test_a_cost_is_never_shown_as_a_zero_it_isnt() -> None:
    from tollhouse.ledger.report import cost_cell

    row = {"cost_usd": "0", "unpriced_requests": 2, "unmetered_requests": 0}
    assert cost_cell(row, "cost_usd") == "unpriced"
    row = {"cost_usd": "0.5", "unpriced_requests": 1, "unmetered_requests": 0}
    assert cost_cell(row, "cost_usd") == "≥0.5000"
    row = {"cost_usd": "0", "unpriced_requests": 0, "unmetered_requests": 0}
    assert cost_cell(row, "cost_usd") == "0.000000"  # errors the provider didn't bill


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_table_fits_the_terminal_without_cutting_a_name_or_number(width: int) -> None:
    """At 80 and 120 columns every cell used to be cut to '0.0…', 'pro…', 'gpt-5-…'."""
    from rich.console import Console

    from tollhouse.cli.tables import spend
    from tollhouse.ledger.report import summarize
    from tollhouse.ledger.store import connect

    tmp = Path(__import__("tempfile").mkdtemp())
    writer = LedgerWriter(tmp / "l.db", Pricer(parse_settings({"prices": PRICES}).prices))
    writer.start()
    for entry in seed_entries(datetime.now(UTC)):
        writer.submit(entry)
    writer.flush()
    writer.close()
    with connect(tmp / "l.db", readonly=True) as conn:
        rows = summarize(conn, ["project", "model", "day"])
    console = Console(width=width, record=True)
    console.print(spend(rows, ["project", "model", "day"], "Spend", width))
    shown = console.export_text()
    assert "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= width
    for row in rows:  # names whole, on one line (the seeded hostile name is long: folded)
        assert str(row["model"]) in shown and str(row["day"]) in shown
    assert "cost (USD)" in shown and "requests" in shown
    if width >= 200:
        assert "too narrow" not in shown
