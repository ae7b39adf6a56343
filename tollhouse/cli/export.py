"""``tollhouse export``: the ledger out as files, for people's own analytics.

A command group: ``rows`` and ``totals`` here; other kinds (``sft``, ``eval``) join it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from tollhouse.cli.ledger import CONFIG, LEDGER, open_ledger
from tollhouse.cli.main import friendly

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="parquet needs the export extra: pip install 'tollhouse[export]'.",
)
OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The file to write (csv: stdout when left out).",
)
SINCE = click.option("--since", help="Start: 2026-11-01, an ISO time, or 7d / 12h / 30m ago.")
UNTIL = click.option("--until", help="End (exclusive), same forms as --since.")
PROJECT = click.option("--project", help="Only this project.")


@click.group()
def export() -> None:
    """Export the ledger as Parquet or csv, readable by DuckDB, pandas, a spreadsheet."""


@export.command()
@FORMAT
@OUTPUT
@SINCE
@UNTIL
@PROJECT
@LEDGER
@CONFIG
@friendly
def rows(
    fmt: str,
    output: Path | None,
    since: str | None,
    until: str | None,
    project: str | None,
    ledger: str | None,
    path: Path | None,
) -> None:
    """Every raw row of the ledger (one per request), oldest first.

    With [ledger] keep_rows_days set, days before the retention have no rows
    left: `export totals` still has them.

    \b
    Examples:
      tollhouse export rows -o rows.parquet
      tollhouse export rows --format csv --since 30d > rows.csv
      duckdb -c "SELECT project, sum(cost_usd) FROM 'rows.parquet' GROUP BY 1"
    """
    from tollhouse.ledger.export import export_rows

    _run(export_rows, fmt, output, since, until, project, ledger, path)


@export.command()
@FORMAT
@OUTPUT
@SINCE
@UNTIL
@PROJECT
@LEDGER
@CONFIG
@friendly
def totals(
    fmt: str,
    output: Path | None,
    since: str | None,
    until: str | None,
    project: str | None,
    ledger: str | None,
    path: Path | None,
) -> None:
    """The daily totals: per UTC day, project, model, provider and tag set, exact cost.

    Whole days: --since and --until pick the days they fall in.

    \b
    Examples:
      tollhouse export totals -o totals.parquet
      tollhouse export totals --format csv --since 2026-01-01 -o 2026.csv
    """
    from tollhouse.ledger.export import export_totals

    _run(export_totals, fmt, output, since, until, project, ledger, path)


def _run(
    write: Callable[..., int],
    fmt: str,
    output: Path | None,
    since: str | None,
    until: str | None,
    project: str | None,
    ledger: str | None,
    path: Path | None,
) -> None:
    from tollhouse.ledger.report import parse_time

    if fmt == "parquet":
        if output is None:
            raise click.ClickException("parquet is written to a file: add -o FILE.parquet")
        import duckdb  # noqa: F401  (missing: the friendly error names the export extra)
    start, end = parse_time(since), parse_time(until)
    with open_ledger(ledger, path, readonly=True) as conn:
        count = write(conn, output or sys.stdout, fmt, start, end, project)
    if output is not None:
        click.echo(f"wrote {count:,} rows to {output}", err=True)
