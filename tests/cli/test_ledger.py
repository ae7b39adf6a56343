"""``tollhouse ledger verify|rebuild|vacuum`` and ``report --requests`` on a real ledger."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.ledger.test_totals import _sample, insert
from tollhouse.cli.main import cli
from tollhouse.ledger.store import connect


def _ledger(tmp_path: Path, rows: int = 60) -> Path:
    path = tmp_path / "l.db"
    conn = connect(path)
    insert(conn, _sample(rows))
    conn.close()
    return path


def test_verify_catches_a_hand_edit_and_rebuild_mends_it(tmp_path: Path) -> None:
    ledger, runner = _ledger(tmp_path), CliRunner()
    done = runner.invoke(cli, ["ledger", "verify", "--ledger", str(ledger)])
    assert done.exit_code == 0 and "totals equal the rows" in done.output
    conn = connect(ledger)
    conn.execute("UPDATE requests SET input_tokens = 999999 WHERE request_id = 'req-5'")
    conn.close()
    done = runner.invoke(cli, ["ledger", "verify", "--ledger", str(ledger)])
    assert done.exit_code == 1 and "input_tokens" in done.output
    done = runner.invoke(cli, ["ledger", "rebuild", "--ledger", str(ledger)])
    assert done.exit_code == 0 and "60 rows" in done.output
    assert runner.invoke(cli, ["ledger", "verify", "--ledger", str(ledger)]).exit_code == 0


def test_vacuum_needs_a_retention_then_prunes(tmp_path: Path) -> None:
    ledger, runner = _ledger(tmp_path), CliRunner()
    config = tmp_path / "c.toml"
    config.write_text("")
    done = runner.invoke(
        cli, ["ledger", "vacuum", "--ledger", str(ledger), "--config", str(config)]
    )
    assert done.exit_code != 0 and "keep_rows_days" in done.output
    done = runner.invoke(cli, ["ledger", "vacuum", "--ledger", str(ledger), "--keep-days", "1"])
    assert done.exit_code == 0 and "pruned 60 rows" in done.output  # the sample is from January
    done = runner.invoke(
        cli, ["report", "--ledger", str(ledger), "--by", "project", "--format", "csv"]
    )
    assert (
        done.exit_code == 0
        and sum(int(line.split(",")[1]) for line in done.output.split()[1:]) == 60
    )


def test_report_requests_pages_by_cursor(tmp_path: Path) -> None:
    ledger, runner = _ledger(tmp_path, 25), CliRunner()
    args = ["report", "--requests", "--ledger", str(ledger), "--format", "csv", "--limit", "10"]
    seen: list[str] = []
    before: list[str] = []
    for _ in range(3):
        done = runner.invoke(cli, args + before)
        assert done.exit_code == 0, done.output
        lines = [line for line in done.stdout.splitlines()[1:] if line]
        seen += [line.split(",")[1] for line in lines]
        if "older:" not in done.stderr:
            break
        before = ["--before", done.stderr.split("--before ")[1].strip().strip("'")]
    assert len(seen) == 25 and len(set(seen)) == 25
