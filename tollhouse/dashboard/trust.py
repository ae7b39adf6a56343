"""Trust metrics as the contract with the trust branch defines them (TRUST_CONTRACT.md).

Provisional: what the ledger records today. A request is a step of a task
named by its ``X-Tollhouse-Task`` tag when it has one, else a task of its
own; a task is degraded when one of its steps was answered by a fallback
(``requests.trust = 'degraded'``). Irreversible actions, cache validity and
fallback divergence are not recorded yet: 0 or null. The trust branch's
``tollhouse.trust.metrics.trust_metrics`` replaces this function at merge.

>>> trust_metrics(conn, since=datetime(2026, 11, 1, tzinfo=UTC))["degraded_task_share"]
0.125
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

BUCKETS = [round(i / 10, 1) for i in range(10)]


def trust_metrics(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    where, params = ["trust IS NOT NULL"], []
    if since:
        where.append("ts >= ?")
        params.append(_iso(since))
    if until:
        where.append("ts < ?")
        params.append(_iso(until))
    if project:
        where.append("project = ?")
        params.append(project)
    rows = conn.execute(
        f"SELECT request_id, tags, trust FROM requests WHERE {' AND '.join(where)}", params
    )
    degraded: dict[str, bool] = {}
    for request_id, tags, trust in rows:
        task = json.loads(tags or "{}").get("task") or request_id
        degraded[task] = degraded.get(task, False) or trust == "degraded"
    tasks, bad = len(degraded), sum(degraded.values())
    return {
        "tasks": tasks,
        "degraded_tasks": bad,
        "degraded_task_share": bad / tasks if tasks else None,
        "irreversible_actions": 0,
        "tainted_irreversible_fired": 0,
        "tainted_irreversible_share": None,
        "held_actions": 0,
        "cache_lookups": 0,
        "cache_hits": 0,
        "cache_validity_misses": 0,
        "cache_validity_miss_rate": None,
        "divergence": {
            "samples": 0,
            "mean": None,
            "p50": None,
            "histogram": [[b, 0] for b in BUCKETS],
        },
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
