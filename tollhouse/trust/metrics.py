"""Correctness metrics over the ledger: the shape shared with the dashboard (#5).

>>> trust_metrics(conn)["degraded_task_share"]
0.25

Steps, cache lookups and divergence samples are joined to ``requests`` for
the project filter; gate decisions and actions carry their project.
Divergence covers both sampled fallback replays and verifications: each
compares a degraded answer with the primary's.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from tollhouse.ledger.report import time_window
from tollhouse.trust.divergence import distribution

BY_PROJECT = "request_id IN (SELECT request_id FROM requests WHERE project = ?)"


def trust_metrics(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    def where(joined: bool) -> tuple[str, list[Any]]:
        clause, params = time_window(since, until)
        if project is None:
            return clause, list(params)
        return f"{clause} AND {BY_PROJECT if joined else 'project = ?'}", [*params, project]

    def one(sql: str, joined: bool) -> Any:
        clause, params = where(joined)
        return conn.execute(sql.format(where=clause), params).fetchone()

    tasks, degraded = one(
        "SELECT COUNT(DISTINCT task), COUNT(DISTINCT CASE WHEN own = 'degraded' THEN task END) "
        "FROM trust_steps WHERE {where}",
        True,
    )
    fired, tainted = one(
        "SELECT COUNT(*), COALESCE(SUM(tainted), 0) FROM trust_actions "
        "WHERE irreversible = 1 AND status != 'abandoned' AND {where}",
        False,
    )
    (held,) = one(
        "SELECT COUNT(*) FROM trust_gate WHERE irreversible = 1 AND allow = 0 AND {where}", False
    )
    lookups, hits, validity = one(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome = 'hit'), "
        "COUNT(*) FILTER (WHERE outcome = 'validity_miss') FROM trust_cache_lookups "
        "WHERE {where}",
        True,
    )
    clause, params = where(True)
    samples = [
        row[0]
        for row in conn.execute(f"SELECT similarity FROM trust_divergence WHERE {clause}", params)
    ]
    return {
        "tasks": tasks,
        "degraded_tasks": degraded,
        "degraded_task_share": _share(degraded, tasks),
        "irreversible_actions": fired,
        "tainted_irreversible_fired": tainted,
        "tainted_irreversible_share": _share(tainted, fired),
        "held_actions": held,
        "cache_lookups": lookups,
        "cache_hits": hits,
        "cache_validity_misses": validity,
        "cache_validity_miss_rate": _share(validity, lookups),
        "divergence": distribution(samples),
    }


def render_metrics(m: dict[str, Any]) -> str:
    """A plain two-column table for ``tollhouse report --trust``."""
    d = m["divergence"]
    rows = [
        ("tasks", m["tasks"]),
        ("tasks with a degraded step", _with_share(m["degraded_tasks"], m["degraded_task_share"])),
        ("irreversible actions fired", m["irreversible_actions"]),
        (
            "  of them on a tainted trajectory",
            _with_share(m["tainted_irreversible_fired"], m["tainted_irreversible_share"]),
        ),
        ("irreversible actions held", m["held_actions"]),
        ("cache lookups", m["cache_lookups"]),
        ("  hits", m["cache_hits"]),
        (
            "  validity misses",
            _with_share(m["cache_validity_misses"], m["cache_validity_miss_rate"]),
        ),
        ("divergence samples", d["samples"]),
        ("  similarity mean / p50", f"{_num(d['mean'])} / {_num(d['p50'])}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    if d["samples"]:
        top = max(n for _, n in d["histogram"]) or 1
        for start, n in d["histogram"]:
            lines.append(f"  {start:.1f}-{start + 0.1:.1f}  {'#' * round(20 * n / top):<20} {n}")
    return "\n".join(lines)


def _share(part: int, whole: int) -> float | None:
    return None if not whole else round(part / whole, 6)


def _with_share(n: int, share: float | None) -> str:
    return f"{n}" if share is None else f"{n} ({share:.1%})"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
