"""Exports: rows and totals written as Parquet (DuckDB) or csv, read back exactly."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from click.testing import CliRunner

from tests.ledger.test_totals import _sample, conn, insert  # noqa: F401  (the fixture)
from tollhouse.cli.main import cli
from tollhouse.ledger.export import export_rows, export_totals
from tollhouse.ledger.report import summarize


def _parquet(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = duckdb.connect()
    try:
        return db.execute(sql.replace("FILE", f"'{path}'")).fetchall()
    finally:
        db.close()


def test_rows_and_totals_round_trip_through_parquet(conn: Any, tmp_path: Path) -> None:  # noqa: F811
    found = _sample(500)
    found[3]["cost"] = "0.000000000000000000000000000001"  # 30 decimals survive
    found[3]["tags"] = {"purpose": 'quote " and, comma'}
    insert(conn, found)
    rows, daily = tmp_path / "rows.parquet", tmp_path / "totals.parquet"
    assert export_rows(conn, rows, "parquet") == 500
    assert export_totals(conn, daily, "parquet") > 0
    by_project = {r["project"]: r for r in summarize(conn, ["project"])}
    for path in (rows, daily):
        sums = _parquet(
            path,
            "SELECT project, sum(cost_usd), count(cost_usd) FROM FILE GROUP BY 1 ORDER BY 1"
            if path == rows
            else "SELECT project, sum(cost_usd), sum(priced) FROM FILE GROUP BY 1 ORDER BY 1",
        )
        for project, cost, _ in sums:
            assert cost == Decimal(by_project[project]["cost_usd"]), (path.name, project)
    (tags,) = _parquet(rows, "SELECT tags FROM FILE WHERE request_id = 'req-3'")[0]
    assert tags == '{"purpose": "quote \\" and, comma"}'
    (none,) = _parquet(rows, "SELECT count(*) FROM FILE WHERE cost_usd IS NULL")[0]
    assert none == sum(1 for r in found if r["cost"] is None)
    requests = _parquet(daily, "SELECT sum(requests), min(day) FROM FILE")[0]
    assert requests[0] == 500 and str(requests[1]) == "2026-01-01"


def test_export_command_writes_csv_and_names_the_extra(tmp_path: Path) -> None:
    from tollhouse.ledger.store import connect

    ledger = tmp_path / "l.db"
    c = connect(ledger)
    insert(c, _sample(40))
    c.close()
    runner = CliRunner()
    done = runner.invoke(cli, ["export", "totals", "--format", "csv", "--ledger", str(ledger)])
    assert done.exit_code == 0, done.output
    read = list(csv.DictReader(io.StringIO(done.output)))
    assert sum(int(r["requests"]) for r in read) == 40
    total = sum(Decimal(r["cost_usd"]) for r in read)
    c = connect(ledger)
    assert total == sum(Decimal(r["cost_usd"]) for r in summarize(c, ["project"]))
    c.close()
    out = tmp_path / "rows.parquet"
    done = runner.invoke(cli, ["export", "rows", "-o", str(out), "--ledger", str(ledger)])
    assert done.exit_code == 0 and _parquet(out, "SELECT count(*) FROM FILE")[0][0] == 40
    done = runner.invoke(cli, ["export", "rows", "--ledger", str(ledger)])  # parquet, no -o
    assert done.exit_code != 0 and "-o FILE.parquet" in done.output
