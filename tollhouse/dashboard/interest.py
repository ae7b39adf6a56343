"""The dashboard's principal-and-interest view: the configured repositories' reports,
and principal vs interest per month across them (the plot)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tollhouse.errors import TollhouseError
from tollhouse.interest.report import as_dict, repository_report
from tollhouse.settings import InterestSettings

HINT = 'List local repositories in [interest] repos = ["~/src/app"] to see them here.'


def interest_view(
    conn: Any,
    conf: InterestSettings,
    since: datetime | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    """One report per repository in ``conf.repos`` (a failing one says why), and the
    months: principal, interest and their rate summed over the repositories."""
    repos: list[dict[str, Any]] = []
    for path in conf.repos:
        try:
            found = repository_report(
                conn,
                Path(path).expanduser(),
                weeks=conf.weeks,
                purposes=conf.rework_purposes,
                since=since,
                project=project,
                cache_dir=conf.resolved_cache_dir(),
            )
        except (TollhouseError, OSError) as exc:
            repos.append({"repository": path, "error": str(exc)})
            continue
        repos.append(as_dict(found))
    return {
        "weeks": conf.weeks,
        "purposes": list(conf.rework_purposes),
        "repos": repos,
        "months": months(repos),
        "hint": "" if conf.repos else HINT,
    }


def months(repos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Principal and interest per month over every repository and project (exact sums)."""
    totals: defaultdict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for repo in repos:
        for p in repo.get("periods", []):
            month = totals[p["month"]]
            month[0] += Decimal(p["principal_usd"])
            month[1] += Decimal(p["interest_usd"])
    return [
        {
            "month": m,
            "principal_usd": _usd(principal),
            "interest_usd": _usd(interest),
            "rate": None if not principal else _usd(round(interest / principal, 4)),
        }
        for m, (principal, interest) in sorted(totals.items())
    ]


def _usd(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"
