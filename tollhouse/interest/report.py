"""One repository's principal-and-interest report, from its path and the ledger.

>>> with connect(ledger, readonly=True) as conn:
...     found = repository_report(conn, Path("."), weeks=4, purposes=("rework", "fix"))
>>> as_dict(found)["interest_usd"]
'0.42'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tollhouse.attribution.gitcontext import root_commit
from tollhouse.interest.account import InterestReport, account
from tollhouse.interest.history import ChangeCache, Git, GitError, load_history, repository_root
from tollhouse.interest.spend import repository_spend


@dataclass(slots=True)
class RepositoryReport:
    root: Path
    repo: str  # its identity: the root commit
    calls: int
    report: InterestReport


def repository_report(
    conn: Any,
    path: Path,
    *,
    weeks: int,
    purposes: tuple[str, ...],
    since: datetime | None = None,
    project: str | None = None,
    cache_dir: Path | None = None,
) -> RepositoryReport:
    """The report for the repository holding ``path`` (GitError: not one, or no commit)."""
    root = repository_root(path)
    repo = root_commit(root)
    if repo is None:
        raise GitError(f"{root}: the repository has no commit yet")
    git = Git(root)
    cache = ChangeCache.open(cache_dir / f"{repo}.json" if cache_dir else None)
    history, calls = load_history(git, repository_spend(conn, repo, project), weeks, cache)
    found = account(calls, history, weeks=weeks, purposes=purposes, since=since)
    return RepositoryReport(root, repo, len(calls), found)


def as_dict(r: RepositoryReport) -> dict[str, Any]:
    """The report as JSON-ready values: money as decimal strings, times ISO 8601 UTC."""
    rep = r.report
    return {
        "repository": str(r.root),
        "repo_id": r.repo,
        "weeks": rep.weeks,
        "calls": r.calls,
        "principal_usd": _usd(rep.principal),
        "interest_usd": _usd(rep.interest),
        "unlanded_usd": _usd(rep.unlanded),
        "rate": _ratio(rep.rate),
        "ai_commits": rep.ai_commits,
        "ai_lines": rep.ai_lines,
        "rewritten_lines": rep.rewritten_lines,
        "rewritten_share": _ratio(rep.rewritten_share),
        "periods": [
            {
                "project": p.project,
                "month": p.month,
                "principal_usd": _usd(p.principal),
                "interest_usd": _usd(p.interest),
                "tagged_usd": _usd(p.tagged),
                "unlanded_usd": _usd(p.unlanded),
                "rate": _ratio(p.rate),
            }
            for p in rep.periods
        ],
        "rework": [
            {
                "commit": c.sha,
                "time": datetime.fromtimestamp(c.time, UTC).isoformat(timespec="seconds"),
                "lines": c.lines,
                "reverts": c.reverts,
                "spend_usd": _usd(c.spend),
            }
            for c in rep.rework
        ],
    }


def _usd(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _ratio(value: Decimal | None) -> str | None:
    return None if value is None else format(value.quantize(Decimal("0.0001")).normalize(), "f")
