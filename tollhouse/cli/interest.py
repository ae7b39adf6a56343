"""``tollhouse interest``: AI spend's principal and its interest, for one repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tollhouse.errors import TollhouseError

PRINCIPAL_HELP = "Spend on work that landed: calls that led up to a commit."
INTEREST_HELP = "Spend on rework: tagged calls, and calls that led up to a rework commit."


@click.command()
@click.option(
    "--repo",
    "repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
    help="The repository (any directory in its work tree).",
)
@click.option("--weeks", type=click.IntRange(1, 520), help="Rework window (default: config's, 4).")
@click.option("--since", help="Start: 2026-11-01, an ISO time, or 90d ago.")
@click.option("--project", help="Only calls of this project.")
@click.option("--top", type=click.IntRange(0, 1000), default=10, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--ledger", help="Ledger file or postgresql:// URL (default: the config's).")
@click.option("--config", "path", type=click.Path(path_type=Path), help="Config file.")
def interest(
    repo: Path,
    weeks: int | None,
    since: str | None,
    project: str | None,
    top: int,
    fmt: str,
    ledger: str | None,
    path: Path | None,
) -> None:
    """What AI spend bought (principal) and what it cost again (interest), per project and month.

    Calls made by a local process in a git repository carry the repository's
    branch and HEAD. A call lands on the commit that followed its HEAD on its
    branch; that commit is AI-assisted. Interest is the spend on calls tagged
    X-Tollhouse-Tag-Purpose: rework / bugfix / fix / revert (configurable), plus
    the spend that landed on commits rewriting or reverting lines of an
    AI-assisted commit at most --weeks old. Principal is the rest that landed.

    \b
    Examples:
      tollhouse interest
      tollhouse interest --repo ~/src/app --weeks 2 --since 90d
      tollhouse interest --format json > interest.json
    """
    from tollhouse.cli.main import _settings
    from tollhouse.interest.report import as_dict, repository_report
    from tollhouse.ledger.report import parse_time
    from tollhouse.ledger.store import connect

    try:
        settings = _settings(path)
        location = ledger or settings.ledger.location()
        _exists(location)
        config = settings.interest
        with connect(location, readonly=True) as conn:
            found = repository_report(
                conn,
                repo.resolve(),
                weeks=weeks or config.weeks,
                purposes=config.rework_purposes,
                since=parse_time(since),
                project=project,
                cache_dir=config.resolved_cache_dir(),
            )
    except TollhouseError as exc:
        raise click.ClickException(str(exc)) from None
    data = as_dict(found)
    data["rework"] = data["rework"][:top]
    click.echo(json.dumps(data, indent=2) if fmt == "json" else render(data))


def _exists(location: Any) -> None:
    from tollhouse.ledger.postgres import is_postgres

    if not is_postgres(location) and not Path(location).exists():
        raise click.ClickException(f"no ledger at {location} yet: run `tollhouse serve` first")


def render(d: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    share = d["rewritten_share"]
    lines = [
        f"{d['repository']}  (repo {d['repo_id'][:12]}, {d['calls']} calls with git context)",
        f"principal  ${d['principal_usd']}   {PRINCIPAL_HELP}",
        f"interest   ${d['interest_usd']}   {INTEREST_HELP}",
        f"rate       {_pct(d['rate'])}   interest / principal",
        f"unlanded   ${d['unlanded_usd']}   calls no commit followed (yet)",
        f"AI-assisted lines rewritten within {d['weeks']} weeks: "
        f"{d['rewritten_lines']} of {d['ai_lines']} ({_pct(share)}), "
        f"{d['ai_commits']} AI-assisted commits",
        "",
        f"{'project':<20} {'month':<8} {'principal':>12} {'interest':>12} {'rate':>8}",
    ]
    for p in d["periods"]:
        lines.append(
            f"{p['project'][:20]:<20} {p['month']:<8} {p['principal_usd']:>12} "
            f"{p['interest_usd']:>12} {_pct(p['rate']):>8}"
        )
    if d["rework"]:
        lines += ["", "largest rework commits:", f"{'commit':<12} {'when':<20} lines  spend"]
        for c in d["rework"]:
            note = f"  reverts {c['reverts'][:12]}" if c["reverts"] else ""
            lines.append(
                f"{c['commit'][:12]} {c['time'][:19]:<20} {c['lines']:>5}  ${c['spend_usd']}{note}"
            )
    return "\n".join(lines)


def _pct(ratio: str | None) -> str:
    return "-" if ratio is None else f"{float(ratio) * 100:.1f}%"
