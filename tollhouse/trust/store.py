"""Where trust state lives: trajectories, idempotency claims, cached answers.

Cached answers (opt-in) are the one thing here with bodies: :class:`LedgerTrustStore`
keeps them in memory only (``trust.cache_max_entries``, ``trust.cache_ttl_s``), never
in the ledger, so a restart starts with an empty cache.

:class:`TrustStore` is the narrow async interface the service uses; a later
multi-instance deployment can put Redis behind it (an atomic ``SET NX`` for
claims). :class:`LedgerTrustStore` keeps the state in this process and
writes every change through the one :class:`~tollhouse.ledger.writer.LedgerWriter`,
so a restarted gateway reloads it (:meth:`LedgerTrustStore.load`).
Idempotency claims are the one write the caller waits for: see
:mod:`tollhouse.trust.idempotency` for why that is atomic and durable.

>>> store = LedgerTrustStore(writer, retention_s=86_400, cache_entries=1000)
>>> step = await store.record_step("t1", "1", degraded_because=None, inputs=None, request_id="r1")
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from tollhouse.errors import GatewayError
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.trust.audit import action_row, clearance_row, completion_row, step_row
from tollhouse.trust.cache import AnswerCache, CacheEntry
from tollhouse.trust.idempotency import ActionRecord, Claim, IdempotencyTable
from tollhouse.trust.trajectory import Step, Trajectory, task_key, task_of


class NotRecorded(GatewayError):
    """503: the ledger refused the row of a claim or an outcome (it is quarantined, with
    why); nothing was decided, so the agent may retry, and other rows are unaffected."""

    status = 503
    kind = "api_error"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"the ledger could not record {what} (see `tollhouse report` quarantine); "
            "nothing was decided: retry with the same Idempotency-Key",
            retry_after=1.0,
        )


class TrustStore(Protocol):
    async def record_step(
        self,
        task: str,
        step_id: str | None,
        *,
        degraded_because: str | None,
        inputs: tuple[str, ...] | None,
        request_id: str,
    ) -> Step: ...

    async def trajectory(self, task: str) -> Trajectory | None: ...

    async def projects_of(self, task: str) -> list[str]:
        """The projects with a trajectory for the (unscoped) ``task``."""
        ...

    async def clear_step(
        self, task: str, step_id: str, how: str, by: str | None, similarity: float | None
    ) -> Step: ...

    async def claim(self, record: ActionRecord) -> tuple[Claim, ActionRecord | None]: ...

    async def complete(self, action_id: str, status: str, result: Any) -> ActionRecord: ...

    async def action(self, action_id: str) -> ActionRecord | None: ...

    async def find_action(self, project: str, key: str) -> ActionRecord | None: ...

    async def cache_get(self, key: str, assumes: str | None) -> tuple[str, CacheEntry | None]: ...

    async def cache_put(self, entry: CacheEntry) -> None: ...

    async def blind_spots(self) -> None:
        """Raise (503) while another instance may know of steps this one can't see."""
        ...


class LedgerTrustStore:
    """In-process state, persisted to (and reloaded from) the SQLite ledger."""

    def __init__(
        self,
        writer: LedgerWriter,
        *,
        retention_s: float,
        key_retention_s: float,
        cache_entries: int,
    ) -> None:
        self.writer = writer
        self.retention_s = retention_s
        self.tasks: dict[str, Trajectory] = {}
        self.owners: dict[str, set[str]] = {}  # unscoped task -> projects having it
        self.claims = IdempotencyTable(key_retention_s)
        self.cache = AnswerCache(cache_entries)

    # -- trajectories
    async def record_step(
        self,
        task: str,
        step_id: str | None,
        *,
        degraded_because: str | None,
        inputs: tuple[str, ...] | None,
        request_id: str,
    ) -> Step:
        if task not in self.tasks and len(self.tasks) % 1024 == 1023:
            self.prune(time.time())
        trajectory = self._trajectory(task)
        step = trajectory.record(
            step_id, degraded_because=degraded_because, inputs=inputs, request_id=request_id
        )
        trajectory.updated = time.time()
        why = degraded_because if step.own_degraded else None
        self.writer.execute([step_row(task, step.id, request_id, why, inputs)])
        return step

    async def trajectory(self, task: str) -> Trajectory | None:
        found = self.tasks.get(task)
        if found is not None and time.time() - found.updated > self.retention_s:
            self._forget(task)
            return None
        return found

    async def projects_of(self, task: str) -> list[str]:
        owners = sorted(self.owners.get(task, ()))
        return [p for p in owners if await self.trajectory(task_key(p, task)) is not None]

    async def clear_step(
        self, task: str, step_id: str, how: str, by: str | None, similarity: float | None
    ) -> Step:
        step = self.tasks[task].clear(step_id, how, by, similarity)
        self.tasks[task].updated = time.time()
        self.writer.execute([clearance_row(task, step_id, how, by, similarity)])
        return step

    def prune(self, now: float) -> None:
        """Forget trajectories and keys past their retention (the ledger keeps them)."""
        for task in [t for t, v in self.tasks.items() if now - v.updated > self.retention_s]:
            self._forget(task)
        self.claims.expire(now)

    def _trajectory(self, task: str) -> Trajectory:
        found = self.tasks.get(task)
        if found is None:
            found = self.tasks[task] = Trajectory(task)
            project, plain = task_of(task)
            self.owners.setdefault(plain, set()).add(project)
        return found

    def _forget(self, task: str) -> None:
        del self.tasks[task]
        project, plain = task_of(task)
        owners = self.owners.get(plain)
        if owners is not None:
            owners.discard(project)
            if not owners:
                del self.owners[plain]

    # -- idempotency
    async def claim(self, record: ActionRecord) -> tuple[Claim, ActionRecord | None]:
        outcome, found = self.claims.claim(
            record.project, record.key, record.fingerprint, now=time.time(), make=lambda: record
        )
        if outcome is Claim.CLAIMED:
            # Decided above, before any await: one winner. Now make it durable.
            try:
                await self._committed(action_row(record))
            except OSError:  # its row was refused (quarantined): the key must not stay taken
                self.claims.release(record)
                raise NotRecorded("the claim") from None
        return outcome, found

    async def complete(self, action_id: str, status: str, result: Any) -> ActionRecord:
        record = self.claims.complete(action_id, status, result, time.time())
        try:
            await self._committed(completion_row(action_id, status, result))
        except OSError:
            self.claims.reopen(record)  # the agent may report it again
            raise NotRecorded("the outcome") from None
        return record

    async def action(self, action_id: str) -> ActionRecord | None:
        return self.claims.get(action_id, time.time())

    async def find_action(self, project: str, key: str) -> ActionRecord | None:
        return self.claims.lookup(project, key, time.time())

    async def _committed(self, statement: tuple[str, tuple[Any, ...]]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def report(ok: bool) -> None:
            loop.call_soon_threadsafe(_settle, done, ok)

        self.writer.execute([statement], report)
        if not await done:
            raise OSError("the ledger could not record the idempotency claim")

    async def blind_spots(self) -> None:
        """One process: it sees every step it answered."""

    # -- cache
    async def cache_get(self, key: str, assumes: str | None) -> tuple[str, CacheEntry | None]:
        return self.cache.get(key, assumes, time.time())

    async def cache_put(self, entry: CacheEntry) -> None:
        self.cache.put(entry)  # memory only: answer bodies never reach the ledger

    # -- start-up
    def load(self, conn: sqlite3.Connection) -> None:
        """Rebuild the state a previous run left (within its retention)."""
        now = time.time()
        conn.row_factory = sqlite3.Row
        self._load_steps(conn)
        for row in conn.execute(
            "SELECT * FROM trust_actions WHERE created >= ? ORDER BY id",
            (now - self.claims.retention_s,),
        ):
            self._load_action(row)
        # Earlier versions kept cached answer bodies in the ledger; none are kept at rest now.
        self.writer.execute([("DELETE FROM trust_cache", ())])

    def _load_steps(self, conn: sqlite3.Connection) -> None:
        since = datetime.fromtimestamp(time.time() - self.retention_s, UTC).isoformat()
        events = [
            ("step", row)
            for row in conn.execute("SELECT * FROM trust_steps WHERE ts >= ?", (since,))
        ] + [
            ("clear", row)
            for row in conn.execute("SELECT * FROM trust_clearances WHERE ts >= ?", (since,))
        ]
        for kind, row in sorted(events, key=lambda e: e[1]["ts"]):
            trajectory = self._trajectory(row["task"])
            trajectory.updated = datetime.fromisoformat(row["ts"]).timestamp()
            if kind == "step":
                inputs = json.loads(row["inputs"]) if row["inputs"] is not None else None
                trajectory.record(
                    row["step"],
                    degraded_because=row["degraded_because"],
                    inputs=inputs,
                    request_id=row["request_id"],
                )
            elif row["step"] in trajectory.steps:
                trajectory.clear(row["step"], row["how"], row["cleared_by"], row["similarity"])

    def _load_action(self, row: sqlite3.Row) -> None:
        record = ActionRecord(
            row["action_id"],
            row["project"],
            row["idem_key"],
            row["fingerprint"],
            row["task"],
            row["name"],
            bool(row["irreversible"]),
            bool(row["tainted"]),
            row["status"],
            None if row["result"] is None else json.loads(row["result"]),
            row["created"],
        )
        if record.status == "abandoned":
            self.claims.by_id[record.id] = record
        else:
            self.claims.put(record)


def _settle(future: asyncio.Future[bool], ok: bool) -> None:
    if not future.done():
        future.set_result(ok)
