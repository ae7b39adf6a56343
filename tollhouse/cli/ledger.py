"""``tollhouse ledger``: verify, rebuild and vacuum the ledger's derived totals and rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tollhouse.cli.main import _settings, friendly

LEDGER = click.option("--ledger", help="Ledger file or postgresql:// URL (default: the config's).")
CONFIG = click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")


def open_ledger(ledger: str | None, path: Path | None, *, readonly: bool = False) -> Any:
    """The ledger named on the command line, else the config's; a clean error if absent."""
    from tollhouse.ledger.postgres import is_postgres
    from tollhouse.ledger.store import connect

    location: Path | str = ledger or _settings(path).ledger.location()
    if not is_postgres(location) and not Path(location).exists():
        raise click.ClickException(f"no ledger at {location}: pass --ledger, or check the config")
    return connect(location if is_postgres(location) else Path(location), readonly=readonly)


@contextmanager
def days_bar(what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over days of the ledger, on stderr."""
    bar = Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@click.group()
def ledger() -> None:
    """The ledger's derived totals and raw rows: verify, rebuild, vacuum."""


@ledger.command()
@LEDGER
@CONFIG
@friendly
def verify(ledger: str | None, path: Path | None) -> None:
    """Prove the daily totals equal the sum of the rows, day by day.

    Exits 1 and lists the differences when they don't (a row edited by hand, a
    ledger written by an older tollhouse): `tollhouse ledger rebuild` mends them.

    \b
    Examples:
      tollhouse ledger verify
      tollhouse ledger verify --ledger postgresql://tollhouse@db/tollhouse
    """
    from tollhouse.ledger import totals, upkeep

    with open_ledger(ledger, path) as conn:
        state = totals.state(conn)
        with days_bar("verifying") as progress:
            found = upkeep.verify(conn, progress)
    for mismatch in found:
        click.echo(str(mismatch))
    if state["state"] != "current":
        click.echo("the totals are marked behind the rows: run `tollhouse ledger rebuild`")
    if found or state["state"] != "current":
        raise SystemExit(1)
    kept = f" (raw rows kept from {state['rows_from']})" if state["rows_from"] else ""
    click.echo(f"totals equal the rows{kept}")


@ledger.command()
@LEDGER
@CONFIG
@friendly
def rebuild(ledger: str | None, path: Path | None) -> None:
    """Recompute the daily totals from the rows.

    For a ledger written by an older tollhouse, imported, or edited by hand. Safe
    while the gateway runs: a week of days per transaction. Days whose rows
    retention pruned keep their totals.

    \b
    Example:
      tollhouse ledger rebuild
    """
    from tollhouse.ledger import upkeep

    with open_ledger(ledger, path) as conn, days_bar("rebuilding") as progress:
        counted = upkeep.rebuild(conn, progress)
    click.echo(f"totals rebuilt from {counted:,} rows")


@ledger.command()
@click.option(
    "--keep-days",
    type=click.IntRange(1),
    help="Keep raw rows this many days (default: the config's [ledger] keep_rows_days).",
)
@click.option("--compact", is_flag=True, help="Then give the freed space back (VACUUM; slow).")
@LEDGER
@CONFIG
@friendly
def vacuum(keep_days: int | None, compact: bool, ledger: str | None, path: Path | None) -> None:
    """Prune raw rows older than the retention; the daily totals keep every day.

    Reports over pruned days still add up (read whole days from the totals);
    what needs raw rows loses them: the request list, task views, `export rows`.

    \b
    Examples:
      tollhouse ledger vacuum                    # [ledger] keep_rows_days = 400
      tollhouse ledger vacuum --keep-days 90 --compact
    """
    from tollhouse.ledger import upkeep

    days = keep_days or _settings(path).ledger.keep_rows_days
    if not days:
        raise click.ClickException(
            "retention is off: set [ledger] keep_rows_days in the config, or pass --keep-days"
        )
    with open_ledger(ledger, path) as conn:
        deleted, cut = upkeep.prune(conn, days)
        if compact:
            upkeep.compact(conn)
    click.echo(f"pruned {deleted:,} rows from before {cut}; the totals keep those days")
