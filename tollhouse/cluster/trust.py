"""Trust state in Redis, so every instance answers the same: :class:`RedisTrustStore`.

The same :class:`~tollhouse.trust.store.TrustStore` interface as the in-process
store, with Redis as the source of truth and the ledger as the audit trail
(the same ``trust_*`` rows, written through the one writer, not awaited):

- **Idempotency claims**: one script claims ``(project, key)`` with ``SET NX``
  semantics and returns the existing record otherwise, so of any number of
  concurrent claims on any instances exactly one wins; keys expire after the
  retention. Reporting an outcome is one script too (it fails when the action
  was reported already). Redis down: claims and outcomes refuse with 503
  (:class:`StateUnavailable`) rather than risk a side effect twice.
- **Trajectories**: a task is a Redis list of step and clearance events,
  replayed into the sans-io :class:`Trajectory`. Redis down: steps answered
  meanwhile are kept here and pushed, in order, when Redis is back; reading a
  trajectory (the gate, the trust endpoints) refuses with 503 — the gate never
  allows an irreversible action on a trajectory it cannot see.
- **The response cache**: one hash per entry, expiring with it (Redis's own
  memory policy bounds it, not ``cache_max_entries``). Redis down: bypassed
  (a miss; nothing stored).

>>> # store = RedisTrustStore(state, writer, retention_s=86_400, key_retention_s=86_400)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tollhouse.cluster.client import RedisState, StateDown, decode
from tollhouse.cluster.sight import Sight
from tollhouse.errors import GatewayError
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.tasks import spawn
from tollhouse.trust.audit import action_row, clearance_row, completion_row, step_row
from tollhouse.trust.cache import HIT, MISS, VALIDITY_MISS, CacheEntry
from tollhouse.trust.idempotency import IN_FLIGHT, ActionRecord, Claim
from tollhouse.trust.trajectory import Step, Trajectory, task_key, task_of

T = TypeVar("T")

log = logging.getLogger("tollhouse.cluster")

CLAIM = """
local found = redis.call('GET', KEYS[1])
if found then
  local existing = redis.call('HGETALL', ARGV[4] .. found)
  if #existing > 0 then return {0, existing} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], 'record', ARGV[2], 'status', 'in_flight', 'key', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {1, {}}
"""
"""KEYS: the (project, key) claim, the action; ARGV: action id, record, retention ms, act prefix."""

COMPLETE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status ~= 'in_flight' then return status end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[2], 'completed', ARGV[3])
if ARGV[1] == 'abandoned' then
  local claim = redis.call('HGET', KEYS[1], 'key')
  if claim and redis.call('GET', claim) == ARGV[4] then redis.call('DEL', claim) end
end
return 1
"""
"""KEYS: the action; ARGV: status, result JSON, completed, action id. An abandoned action
releases its key (the side effect did not happen)."""


class StateUnavailable(GatewayError):
    """503: shared state is unreachable, and guessing could repeat a side effect."""

    status = 503
    kind = "api_error"


def _down() -> StateUnavailable:
    return StateUnavailable(
        "tollhouse's shared state (Redis) is unreachable, so this can't be decided safely "
        "on one instance; retry in a few seconds",
        retry_after=2.0,
    )


class RedisTrustStore:
    """Trajectories, idempotency claims and cached answers shared through Redis."""

    def __init__(
        self,
        state: RedisState,
        writer: LedgerWriter,
        *,
        retention_s: float,
        key_retention_s: float,
        forget_s: float = 30.0,
    ) -> None:
        self.state = state
        self.writer = writer
        self.retention_ms = max(1, round(retention_s * 1000))
        self.key_retention_ms = max(1, round(key_retention_s * 1000))
        self.backlog: list[tuple[str, str]] = []
        """Trajectory events answered while Redis was down, pushed once it is back."""
        self._flushing = asyncio.Lock()  # one flush at a time: each event pushed once
        self._keeper: asyncio.Task[None] | None = None
        # Silent for three beats and a second: maybe cut off, with steps no one else sees.
        self.sight = Sight(state, stale_s=3 * state.retry_s + 1.0, forget_s=forget_s)
        self._claim = state.client.register_script(CLAIM)
        self._complete = state.client.register_script(COMPLETE)

    async def _run(self, feature: str, command: Callable[[Any], Awaitable[T]]) -> T:
        try:
            return await self.state.run(feature, command)
        except StateDown:
            raise _down() from None

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
        event = {
            "kind": "step",
            "id": secrets.token_hex(8),  # a push retried after a lost reply is replayed once
            "step": step_id,
            "degraded_because": degraded_because,
            "inputs": None if inputs is None else list(inputs),
            "request_id": request_id,
        }
        self._keep_watch()  # from its first step on, this instance beats
        try:
            events, n = await self._push(task, json.dumps(event))
            step = _replay(task, events[:n]).last
        except StateUnavailable:
            self.backlog.append((task, json.dumps(event)))
            step = Trajectory(task).record(
                step_id, degraded_because=degraded_because, inputs=inputs, request_id=request_id
            )
        self._audit_step(task, step.id, degraded_because, inputs, request_id)
        return step

    async def _push(self, task: str, event: str) -> tuple[list[Any], int]:
        await self._flush()
        key = self.state.key("traj", task)

        async def push(r: Any) -> Any:
            return await self._appending(r, task, event).lrange(key, 0, -1).execute()

        n, *_, events = await self._run("trust", push)
        return events, int(n)

    def _appending(self, r: Any, task: str, event: str) -> Any:
        """A transaction that appends ``event`` to ``task`` and notes the task's project."""
        key = self.state.key("traj", task)
        project, plain = task_of(task)
        owners = self.state.key("trajp", plain)
        pipe = r.pipeline(transaction=True)
        pipe.rpush(key, event).pexpire(key, self.retention_ms)
        return pipe.sadd(owners, project).pexpire(owners, self.retention_ms)

    def _keep_watch(self) -> None:
        if self._keeper is None or self._keeper.done():
            self._keeper = spawn(self._watch(), name="tollhouse-trust-beat")

    async def _watch(self) -> None:
        """Push the backlog as soon as Redis answers (not whenever this instance happens to
        make another trust call), then beat: see :mod:`tollhouse.cluster.sight`."""
        pause = max(0.01, self.state.retry_s)
        while True:
            try:
                await self._flush()
                await self._run("trust", self.sight.beat)
            except StateUnavailable:
                pass  # Redis counts as down for retry_s after a failure: try again then
            except Exception:  # a bug must not end the beat with events unpushed
                log.exception("trust: pushing the backlog or beating failed; trying again")
            await asyncio.sleep(pause)

    async def blind_spots(self) -> None:
        """Refuse (503) while another instance may have answered steps no one else sees."""
        await self._flush()
        blind = await self._run("trust", self.sight.blind)
        if blind:
            silent = ", ".join(f"{who} ({seconds:.0f}s)" for who, seconds in blind)
            raise StateUnavailable(
                f"gateway instance(s) {silent} haven't reached the shared state (Redis) "
                "lately: they may have answered steps no other instance can see yet, so no "
                "irreversible action is allowed until they have; retry in a few seconds",
                retry_after=2.0,
            )

    async def close(self) -> None:
        """A clean stop: leave the registry (what was answered is pushed, or kept in the
        ledger's audit rows if Redis is gone)."""
        if self._keeper is not None:
            self._keeper.cancel()
        if not self.backlog:
            await self.state.attempt("trust", self.sight.leave)

    async def _flush(self) -> None:
        """Push the events answered while Redis was down, oldest first, each once.

        Concurrent callers (gate calls, steps, the keeper) wait for one flush rather
        than push the same event again; an event leaves the backlog only once pushed.
        """
        if not self.backlog:
            return
        async with self._flushing:
            while self.backlog:
                task, event = self.backlog[0]

                async def push(r: Any, task: str = task, event: str = event) -> Any:
                    return await self._appending(r, task, event).execute()

                await self._run("trust", push)
                self.backlog.pop(0)
            log.warning("trust: steps answered while Redis was down are now shared")

    async def trajectory(self, task: str) -> Trajectory | None:
        await self._flush()
        key = self.state.key("traj", task)
        events = await self._run("trust", lambda r: r.lrange(key, 0, -1))
        return _replay(task, events).trajectory if events else None

    async def projects_of(self, task: str) -> list[str]:
        await self._flush()
        owners = self.state.key("trajp", task)
        found = await self._run("trust", lambda r: r.smembers(owners))
        projects = sorted(p.decode() if isinstance(p, bytes) else str(p) for p in found)
        keys = [self.state.key("traj", task_key(p, task)) for p in projects]

        async def alive(r: Any) -> Any:  # the set outlives a project's expired trajectory
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.exists(key)
            return await pipe.execute()

        live = await self._run("trust", alive) if keys else []
        return [p for p, n in zip(projects, live, strict=True) if n]

    async def clear_step(
        self, task: str, step_id: str, how: str, by: str | None, similarity: float | None
    ) -> Step:
        event = {
            "kind": "clear",
            "id": secrets.token_hex(8),
            "step": step_id,
            "how": how,
            "by": by,
            "similarity": similarity,
        }
        events, _ = await self._push(task, json.dumps(event))
        self.writer.execute([clearance_row(task, step_id, how, by, similarity)])
        return _replay(task, events).trajectory.steps[step_id]

    def _audit_step(
        self,
        task: str,
        step_id: str,
        why: str | None,
        inputs: tuple[str, ...] | None,
        request_id: str,
    ) -> None:
        self.writer.execute([step_row(task, step_id, request_id, why, inputs)])

    # -- idempotency
    def _claim_key(self, project: str, key: str) -> str:
        digest = hashlib.sha256(f"{project}\0{key}".encode()).hexdigest()
        return self.state.key("idem", digest)

    async def claim(self, record: ActionRecord) -> tuple[Claim, ActionRecord | None]:
        record.created = time.time()
        keys = [self._claim_key(record.project, record.key), self.state.key("act", record.id)]
        args: list[Any] = [
            record.id,
            json.dumps(_static(record)),
            self.key_retention_ms,
            self._act_prefix,
        ]
        won, existing = await self._run(
            "idempotency", lambda r: self._claim(keys=keys, args=args, client=r)
        )
        if won:
            self.writer.execute([action_row(record)])
            return Claim.CLAIMED, record
        found = _record(existing)
        if found.fingerprint != record.fingerprint:
            return Claim.MISMATCH, found
        if found.status == IN_FLIGHT:
            return Claim.IN_FLIGHT, found
        return Claim.REPLAY, found

    @property
    def _act_prefix(self) -> str:
        return self.state.key("act", "")

    async def complete(self, action_id: str, status: str, result: Any) -> ActionRecord:
        key = self.state.key("act", action_id)
        args: list[Any] = [status, json.dumps(result), time.time(), action_id]
        done = await self._run(
            "idempotency", lambda r: self._complete(keys=[key], args=args, client=r)
        )
        if done == 0:
            raise KeyError(action_id)
        if done != 1:
            raise ValueError(f"action {action_id} was already reported as {decode(done)}")
        self.writer.execute([completion_row(action_id, status, result)])
        found = await self.action(action_id)
        assert found is not None
        return found

    async def action(self, action_id: str) -> ActionRecord | None:
        key = self.state.key("act", action_id)
        fields = await self._run("idempotency", lambda r: r.hgetall(key))
        return _record(fields) if fields else None

    async def find_action(self, project: str, key: str) -> ActionRecord | None:
        claim = self._claim_key(project, key)
        found = await self._run("idempotency", lambda r: r.get(claim))
        return None if found is None else await self.action(decode(found))

    # -- cache
    async def cache_get(self, key: str, assumes: str | None) -> tuple[str, CacheEntry | None]:
        name = self.state.key("cache", key)
        try:
            fields = await self.state.run("cache", lambda r: r.hgetall(name))
        except StateDown:
            return MISS, None  # bypassed: the request goes upstream
        if not fields:
            return MISS, None
        f = {decode(k): v for k, v in fields.items()}
        entry = CacheEntry(
            key,
            json.loads(f["assumes"]),
            f["body"] if isinstance(f["body"], bytes) else f["body"].encode(),
            decode(f["content_type"]),
            decode(f["served_by"]),
            float(f["created"]),
            float(f["expires"]),
        )
        if time.time() >= entry.expires:
            return MISS, None
        return (HIT, entry) if entry.assumes == assumes else (VALIDITY_MISS, None)

    async def cache_put(self, entry: CacheEntry) -> None:
        ttl = round((entry.expires - time.time()) * 1000)
        if ttl <= 0:
            return
        name = self.state.key("cache", entry.key)
        mapping: dict[str, Any] = {
            "assumes": json.dumps(entry.assumes),
            "body": entry.body,
            "content_type": entry.content_type,
            "served_by": entry.served_by,
            "created": entry.created,
            "expires": entry.expires,
        }

        async def put(r: Any) -> Any:
            pipe = r.pipeline(transaction=True)
            return await pipe.hset(name, mapping=mapping).pexpire(name, ttl).execute()

        await self.state.attempt("cache", put)  # Redis down: not stored, asked upstream again


class _Replayed:
    def __init__(self, trajectory: Trajectory, last: Step) -> None:
        self.trajectory, self.last = trajectory, last


def _replay(task: str, events: list[Any]) -> _Replayed:
    """The trajectory the events describe, and the step the last one recorded or cleared."""
    trajectory, last = Trajectory(task), Step("", -1)
    seen: set[str] = set()
    for raw in events:
        e = json.loads(raw)
        if "id" in e:  # older events have none
            if e["id"] in seen:
                continue  # pushed twice (a reply lost after the push): counted once
            seen.add(e["id"])
        if e["kind"] == "step":
            last = trajectory.record(
                e["step"],
                degraded_because=e["degraded_because"],
                inputs=e["inputs"],
                request_id=e["request_id"],
            )
        elif e["step"] in trajectory.steps:
            last = trajectory.clear(e["step"], e["how"], e["by"], e["similarity"])
    return _Replayed(trajectory, last)


def _static(r: ActionRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "project": r.project,
        "key": r.key,
        "fingerprint": r.fingerprint,
        "task": r.task,
        "name": r.name,
        "irreversible": r.irreversible,
        "tainted": r.tainted,
        "created": r.created,
    }


def _record(fields: Any) -> ActionRecord:
    if isinstance(fields, list):  # a script's HGETALL: a flat list
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    f = {decode(k): decode(v) for k, v in fields.items()}
    record = ActionRecord(**json.loads(f["record"]))
    record.status = f["status"]
    if "result" in f:
        record.result = json.loads(f["result"])
        record.completed = float(f["completed"])
    return record
