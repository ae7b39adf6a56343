"""The ledger's calls made in one repository, as :class:`~tollhouse.interest.account.Spend`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tollhouse.interest.account import ZERO, Spend

_SELECT = (
    "SELECT ts, project, cost_usd, tags, git_branch, git_head FROM requests "
    "WHERE git_repo = ? AND git_head IS NOT NULL ORDER BY ts"
)


def repository_spend(conn: Any, repo: str, project: str | None = None) -> Iterator[Spend]:
    """Every call recorded with git context in repository ``repo`` (its root commit).

    A call whose cost is unknown counts as assistance with cost 0; a row that
    can't be read (a damaged timestamp or tags) is skipped, never fatal.
    """
    sql, params = _SELECT, [repo]
    if project:
        sql = sql.replace("ORDER BY", "AND project = ? ORDER BY")
        params.append(project)
    for ts, proj, cost, tags, branch, head in conn.execute(sql, params).fetchall():
        try:
            when = datetime.fromisoformat(ts)
        except (TypeError, ValueError):
            continue
        yield Spend(
            when if when.tzinfo else when.replace(tzinfo=UTC),
            str(proj),
            _cost(cost),
            _purpose(tags),
            branch,
            str(head),
        )


def _cost(text: Any) -> Decimal:
    try:
        cost = Decimal(text) if text is not None else ZERO
    except (InvalidOperation, TypeError, ValueError):
        return ZERO
    return cost if cost.is_finite() else ZERO


def _purpose(tags: Any) -> str | None:
    try:
        found = json.loads(tags or "{}").get("purpose")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None
