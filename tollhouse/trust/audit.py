"""The trust state's audit rows in the ledger: one statement builder per table.

Both stores write them (the in-process one as its durable copy, the Redis
one as an audit trail beside Redis, the source of truth), through the one
ledger writer: ``writer.execute([step_row(...)])``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tollhouse.trust.idempotency import ActionRecord

Statement = tuple[str, tuple[Any, ...]]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def step_row(
    task: str, step: str, request_id: str, why: str | None, inputs: Iterable[str] | None
) -> Statement:
    """A step as answered: ``why`` says how it was degraded (None: fresh)."""
    return (
        "INSERT INTO trust_steps (ts, task, step, request_id, own, degraded_because, "
        "inputs) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            now_iso(),
            task,
            step,
            request_id,
            "degraded" if why is not None else "full",
            why,
            None if inputs is None else json.dumps(list(inputs)),
        ),
    )


def clearance_row(
    task: str, step: str, how: str, by: str | None, similarity: float | None
) -> Statement:
    return (
        "INSERT INTO trust_clearances (ts, task, step, how, cleared_by, similarity) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (now_iso(), task, step, how, by, similarity),
    )


def action_row(r: ActionRecord) -> Statement:
    return (
        "INSERT INTO trust_actions (action_id, ts, created, project, idem_key, fingerprint, "
        "task, name, irreversible, tainted, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            r.id,
            now_iso(),
            r.created,
            r.project,
            r.key,
            r.fingerprint,
            r.task,
            r.name,
            int(r.irreversible),
            int(r.tainted),
            r.status,
        ),
    )


def completion_row(action_id: str, status: str, result: Any) -> Statement:
    return (
        "UPDATE trust_actions SET status = ?, result = ?, completed_ts = ? WHERE action_id = ?",
        (status, json.dumps(result), now_iso(), action_id),
    )
