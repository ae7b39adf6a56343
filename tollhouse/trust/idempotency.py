"""Side effects happen once: Idempotency-Key claims, sans-io.

Semantics follow the IETF ``Idempotency-Key`` header draft and Stripe's
documented behaviour:

- the first request with a key claims it (the action is *in flight*) and
  gets an action id; the agent runs the side effect and reports its outcome;
- the same key and the same payload later replays the recorded outcome
  (``Idempotent-Replayed: true``); still in flight → 409 Conflict;
- the same key with a different payload → 422 Unprocessable Content;
- keys are scoped per project (two projects may use the same key) and are
  remembered for a retention period (24 h by default), then forgotten;
- an outcome ``abandoned`` (the side effect did not happen) releases the key
  so a retry can claim it again.

Atomicity: a claim is a check-and-set on a dict with no ``await`` between
the check and the set, so on the gateway's one event loop exactly one of
any number of concurrent claims wins. Durability: the service waits until
the ledger writer has committed the claim row (WAL, ``synchronous=NORMAL``:
it survives a crash of the process) before it tells the agent to go ahead,
and claims are reloaded from the ledger on start. A multi-instance
deployment needs a shared store with an atomic claim (``SET NX`` in Redis)
behind the same :class:`tollhouse.trust.store.TrustStore` interface.

>>> table = IdempotencyTable(retention_s=86_400)
>>> table.claim("acme", "k1", "fp", now=0.0, make=lambda: ActionRecord("a1", "acme", "k1", "fp"))[0]
<Claim.CLAIMED: 'claimed'>
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tollhouse import sane

IN_FLIGHT = "in_flight"
OUTCOMES = ("succeeded", "failed", "abandoned")
MAX_KEY_LEN = 255


class Claim(Enum):
    CLAIMED = "claimed"  # this request owns the key now
    REPLAY = "replay"  # done before: replay the recorded outcome
    IN_FLIGHT = "in_flight"  # 409
    MISMATCH = "mismatch"  # 422: the key was used with another payload


@dataclass(slots=True)
class ActionRecord:
    """One claimed key and, once reported, its outcome."""

    id: str
    project: str
    key: str
    fingerprint: str
    task: str = ""
    name: str = ""
    irreversible: bool = False
    tainted: bool = False
    status: str = IN_FLIGHT
    result: Any = None
    created: float = 0.0
    completed: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "name": self.name,
            "irreversible": self.irreversible,
            "status": self.status,
            "result": self.result,
        }


def fingerprint(body: dict[str, Any]) -> str:
    """What "the same payload" means: the action's fields, canonically encoded."""
    fields = {k: body.get(k) for k in ("task", "name", "payload", "irreversible")}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_key(raw: str | None) -> str | None:
    """The key from the header: a structured-field string (quoted) or a bare token.

    None (refused) unless it is 1-255 printable characters: bytes that weren't UTF-8
    or control characters can't be stored, and normalising them would let two keys
    pass for one.
    """
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    return key if 0 < len(key) <= MAX_KEY_LEN and sane.text(key, MAX_KEY_LEN) == key else None


class IdempotencyTable:
    """Claims by (project, key). The caller passes the clock."""

    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        self.by_key: dict[tuple[str, str], ActionRecord] = {}
        self.by_id: dict[str, ActionRecord] = {}

    def claim(
        self,
        project: str,
        key: str,
        fp: str,
        *,
        now: float,
        make: Callable[[], ActionRecord],
    ) -> tuple[Claim, ActionRecord | None]:
        found = self.by_key.get((project, key))
        if found is not None and now - found.created > self.retention_s:
            self._forget(found)
            found = None
        if found is None:
            record = make()
            record.created = now
            self.put(record)
            return Claim.CLAIMED, record
        if found.fingerprint != fp:
            return Claim.MISMATCH, found
        if found.status == IN_FLIGHT:
            return Claim.IN_FLIGHT, found
        return Claim.REPLAY, found

    def lookup(self, project: str, key: str, now: float) -> ActionRecord | None:
        found = self.by_key.get((project, key))
        if found is not None and now - found.created > self.retention_s:
            return None
        return found

    def get(self, action_id: str, now: float) -> ActionRecord | None:
        """The action, unless it is older than the retention: then it is unknown, as it is
        in Redis (whose keys expire), whether or not it was pruned here yet."""
        found = self.by_id.get(action_id)
        return None if found is None or now - found.created > self.retention_s else found

    def complete(self, action_id: str, status: str, result: Any, now: float) -> ActionRecord:
        """Record the outcome. KeyError: unknown (or expired) id; ValueError: already reported."""
        record = self.get(action_id, now)
        if record is None:
            raise KeyError(action_id)
        if record.status != IN_FLIGHT:
            raise ValueError(f"action {action_id} was already reported as {record.status}")
        record.status, record.result, record.completed = status, result, now
        if status == "abandoned":
            self._forget(record)  # it never happened: the key may be claimed again
            self.by_id[action_id] = record
        return record

    def release(self, record: ActionRecord) -> None:
        """Undo a claim that could not be made durable: as if it never was."""
        self._forget(record)
        self.by_id.pop(record.id, None)

    def reopen(self, record: ActionRecord) -> None:
        """Undo an outcome that could not be made durable: in flight again."""
        record.status, record.result, record.completed = IN_FLIGHT, None, None
        self.by_key.setdefault((record.project, record.key), record)  # unless claimed anew
        self.by_id[record.id] = record

    def put(self, record: ActionRecord) -> None:
        self.by_key[(record.project, record.key)] = record
        self.by_id[record.id] = record

    def expire(self, now: float) -> int:
        old = [r for r in self.by_id.values() if now - r.created > self.retention_s]
        for record in old:
            self._forget(record)
            self.by_id.pop(record.id, None)
        return len(old)

    def _forget(self, record: ActionRecord) -> None:
        if self.by_key.get((record.project, record.key)) is record:
            del self.by_key[(record.project, record.key)]
