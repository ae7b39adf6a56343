"""The ledger out, for people's own analytics: raw rows or daily totals, csv or Parquet.

Parquet is written by DuckDB (the ``export`` extra): a 25 MB wheel with no
other dependency, against pyarrow's 55 MB; it streams a csv spool into a
typed, compressed Parquet file at a few million rows a second, and it is
what most people will read the file with. Costs are DECIMAL(38, 30):
exact, as the ledger keeps them; csv keeps them as the ledger's text.

>>> export_rows(conn, Path("rows.parquet"), "parquet", since, until)
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from tollhouse.ledger import totals as derived
from tollhouse.ledger.report import time_window
from tollhouse.ledger.writer import COLUMNS

FORMATS = ("parquet", "csv")
BATCH = 50_000
MONEY = "DECIMAL(38, 30)"

ROW_COLUMNS = ["id", *(c.strip() for c in COLUMNS.split(","))]
_ROW_TYPES = {
    "id": "BIGINT",
    "ts": "TIMESTAMPTZ",
    "cost_usd": MONEY,
    "latency_ms": "DOUBLE",
    "ttfb_ms": "DOUBLE",
    "queue_wait_ms": "DOUBLE",
    **{
        c: "BIGINT"
        for c in (
            "status",
            "stream",
            "incomplete",
            "input_tokens",
            "cached_input_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "reasoning_tokens",
            "attempts",
            "git_dirty",
        )
    },
}
TOTAL_COLUMNS = [*derived.DIMENSIONS, *derived.COUNTS, "cost_usd"]
_TOTAL_TYPES = {"day": "DATE", "cost_usd": MONEY, **dict.fromkeys(derived.COUNTS, "BIGINT")}


def export_rows(
    conn: Any,
    out: Path | IO[str],
    fmt: str,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> int:
    """Write the window's raw rows, oldest first; returns how many."""
    where, params = time_window(since, until)
    if project:
        where, params = f"{where} AND project = ?", [*params, project]
    sql = f"SELECT {', '.join(ROW_COLUMNS)} FROM requests WHERE {where} ORDER BY id"
    types = [_ROW_TYPES.get(c, "VARCHAR") for c in ROW_COLUMNS]
    return _write(_batches(conn.execute(sql, params)), ROW_COLUMNS, types, out, fmt)


def export_totals(
    conn: Any,
    out: Path | IO[str],
    fmt: str,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> int:
    """Write the daily totals of the days in the window (whole days), with exact costs."""
    days = (
        None if since is None else since.date().isoformat(),
        None if until is None else derived.next_day(until.date().isoformat()),
    )
    where, params = derived.window_where("day", days, project)
    columns = [*derived.DIMENSIONS, *derived.COUNTS, *derived.COST, "cost_places"]
    sql = f"SELECT {', '.join(columns)} FROM totals_day WHERE {where} ORDER BY day, project"
    types = [_TOTAL_TYPES.get(c, "VARCHAR") for c in TOTAL_COLUMNS]
    rows = (_total_row(r) for r in conn.execute(sql, params))
    return _write(_chunked(rows), TOTAL_COLUMNS, types, out, fmt)


def _total_row(r: Sequence[Any]) -> tuple[Any, ...]:
    width = len(derived.DIMENSIONS)
    sums = derived.Sums()
    sums.add(r[width:])
    keys = [v if v != "" or i < 2 else None for i, v in enumerate(r[:width])]
    return (*keys, *(sums.counts[c] for c in derived.COUNTS), format(sums.cost(), "f"))


def _batches(cursor: Any) -> Iterator[list[Any]]:
    fetch = getattr(cursor, "fetchmany", None)
    if fetch is None:  # the Postgres adapter: one fetch
        yield list(cursor.fetchall())
        return
    while True:
        batch = fetch(BATCH)
        if not batch:
            return
        yield batch


def _chunked(rows: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(
    batches: Iterable[list[Any]],
    columns: list[str],
    types: list[str],
    out: Path | IO[str],
    fmt: str,
) -> int:
    if fmt == "csv":
        if isinstance(out, Path):
            with out.open("w", newline="", encoding="utf-8") as f:
                return _csv(batches, columns, f)
        return _csv(batches, columns, out)
    if not isinstance(out, Path):
        raise ValueError("parquet is written to a file")
    import duckdb

    with tempfile.TemporaryDirectory() as spool:
        staged = Path(spool) / "rows.csv"
        with staged.open("w", newline="", encoding="utf-8") as f:
            count = _csv(batches, columns, f, null=_NULL)
        spec = ", ".join(f"'{c}': '{t}'" for c, t in zip(columns, types, strict=True))
        db = duckdb.connect()
        try:
            db.execute(
                f"COPY (SELECT * FROM read_csv({_literal(staged)}, header = true, "
                f"columns = {{{spec}}}, quote = '\"', escape = '\"', nullstr = '{_NULL}', "
                f"auto_detect = false)) TO {_literal(out)} (FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            db.close()
    return count


_NULL = "\\N"  # in the spool only: csv for people writes NULL as an empty field


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _csv(
    batches: Iterable[list[Any]], columns: list[str], f: IO[str], null: str | None = None
) -> int:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for batch in batches:
        if null is not None:
            batch = [[null if v is None else v for v in row] for row in batch]
        writer.writerows(batch)
        count += len(batch)
    return count
