"""What ``tollhouse report`` prints: rich tables on a terminal, exact csv/json elsewhere."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.text import Text

from tollhouse.cli import tables
from tollhouse.ledger.report import count_rows
from tollhouse.settings import Settings

Window = tuple[datetime | None, datetime | None, str | None]


class Output:
    """Where the report goes: the terminal (rich tables) or a csv/json text, maybe a file."""

    def __init__(self, fmt: str, path: Path | None) -> None:
        if path is not None and fmt == "table":
            raise click.ClickException("--output writes csv or json: add --format csv (or json)")
        self.fmt, self.path = fmt, path
        self.console = Console()
        if not self.console.is_terminal:  # piped: don't squeeze tables into 80 columns
            self.console = Console(width=max(self.console.width, 180))
        self.err = Console(stderr=True)

    def show(self, text: str, table: Callable[[], RenderableType]) -> None:
        if self.path is not None:
            self.path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            self.err.print(Text(f"Wrote {self.path}"))
        elif self.fmt == "table":
            self.console.print(table())
        else:
            click.echo(text)

    @contextmanager
    def progress(self, conn: sqlite3.Connection, window: Window) -> Iterator[Any]:
        """A progress bar while the ledger is read, for exports to a file."""
        if self.path is None:
            yield None
            return
        with tables.progress(count_rows(conn, *window), self.path, self.err) as update:
            yield update


def spend(
    rows: list[dict[str, Any]],
    by: Sequence[str],
    project: str | None,
    window: Window,
    width: int = 200,
) -> RenderableType:
    since, until, _ = window
    span = f"{_day(since) or 'start'} to {_day(until) or 'now'}"
    title = f"Spend{f' of {project}' if project else ''}, {span}"
    return tables.spend(rows, by, title, width)


def _day(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else None


def _budget_status(conn: sqlite3.Connection, settings: Settings) -> list[dict[str, Any]]:
    from tollhouse.budgets.gate import BudgetGate  # with the price data: only when asked for
    from tollhouse.pricing import Pricer

    gate = BudgetGate.from_settings(settings, Pricer(settings.prices))
    if gate is None:
        return []
    gate.load(conn)
    return gate.status()


def capacity(rows: list[dict[str, Any]]) -> RenderableType:
    return tables.capacity(rows)


def deals(
    conn: sqlite3.Connection, settings: Settings, out: Output, *, budgets: bool, commitments: bool
) -> None:
    """``--budgets`` and/or ``--commitments``."""
    import json

    found: dict[str, Any] = {}
    if budgets:
        found["budgets"] = _budget_status(conn, settings)
    if commitments:
        from tollhouse.budgets.commitments import commitment_status

        found["commitments"] = commitment_status(conn, settings.commitments, datetime.now(UTC))
    if out.fmt == "table" and out.path is None:
        if budgets:
            out.console.print(tables.budgets(found["budgets"]))
        if commitments:
            out.console.print(tables.commitments(found["commitments"]))
        return
    if out.fmt == "csv":
        raise click.ClickException("--budgets/--commitments export as json: use --format json")
    out.show(json.dumps(found, indent=2), lambda: "")


def project_budget(conn: sqlite3.Connection, settings: Settings, project: str, out: Output) -> None:
    """Under ``--project``'s table: that project's budgets, when it has any."""
    mine = [b for b in _budget_status(conn, settings) if b["project"] == project]
    if mine:
        out.console.print(tables.budgets(mine))


REQUEST_COLUMNS = (
    "ts", "request_id", "project", "provider", "model", "status", "input_tokens",
    "output_tokens", "cost_usd", "price_source", "latency_ms", "tags",
)  # fmt: skip


def requests(
    conn: Any,
    fmt: str,
    project: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    before: str | None,
) -> None:
    """One page of the request list, newest first; the next page's cursor on stderr.

    Keyset paging: the hundredth page is as fast as the first.
    """
    import csv
    import io
    import json

    from tollhouse.dashboard.queries import recent

    filters = {"project": project, "since": since, "until": until, "before": before}
    conn.row_factory = sqlite3.Row  # named rows (the Postgres adapter's too)
    rows = recent(conn, {k: v for k, v in filters.items() if v}, limit)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, [*REQUEST_COLUMNS, "cursor"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r[k] for k in (*REQUEST_COLUMNS, "cursor")} for r in rows)
        click.echo(out.getvalue(), nl=False)
    else:
        wide = Console(width=max(Console().width, 200))  # whole timestamps and ids
        wide.print(tables.plain(REQUEST_COLUMNS, rows, "No requests match."))
    if len(rows) == limit:
        click.echo(f"older: --requests --before '{rows[-1]['cursor']}'", err=True)
    from tollhouse.ledger import totals

    kept = totals.state(conn)["rows_from"]
    if kept:  # retention: the list stops there; the spend reports don't
        click.echo(f"requests before {kept} were pruned ([ledger] keep_rows_days)", err=True)
