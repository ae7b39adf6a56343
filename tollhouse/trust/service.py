"""The trust service: the gateway's request hooks and the operations behind the endpoints.

It implements :class:`tollhouse.gateway.models.RequestHooks`; the pipeline
calls :meth:`TrustService.watch` (sync, a few dict lookups; None for a
request that carries no trust header and no cached model),
:meth:`before_dispatch` (its inputs checked; the cache: an answer to serve,
or a miss), :meth:`after_dispatch` (follow a fallback's answer too, when it
is sampled), :meth:`before_reply` and :meth:`finished` (record the step,
store the answer, queue a divergence replay). Each returns what the pipeline
should do; none writes into the exchange. Everything slow runs in
background tasks.

>>> service = build_trust(settings.trust, writer)
>>> service.start(router, dispatcher, ids, deadline_s=60)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tollhouse.attribution.chain import UNATTRIBUTED, Attribution
from tollhouse.errors import BadRequest, BudgetExceeded, GatewayError
from tollhouse.gateway.models import CachedAnswer, Exchange, Lookup, Outgoing, Watched
from tollhouse.ledger.store import connect
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.settings import TrustSettings
from tollhouse.tasks import spawn
from tollhouse.trust.audit import now_iso
from tollhouse.trust.cache import (
    HIT,
    SKIP,
    USE,
    CacheEntry,
    cache_key,
    storable,
    wants_cache,
)
from tollhouse.trust.divergence import similarity
from tollhouse.trust.errors import Conflict, Held, NotFound, Unprocessable
from tollhouse.trust.gate import GateDecision, decide
from tollhouse.trust.idempotency import IN_FLIGHT, OUTCOMES, ActionRecord, Claim, fingerprint
from tollhouse.trust.replay import KeptRequest, PrimaryRunner, keep
from tollhouse.trust.store import LedgerTrustStore, TrustStore
from tollhouse.trust.text import answer_text
from tollhouse.trust.trajectory import (
    APPROVED,
    VERIFIED,
    Step,
    Trajectory,
    parse_inputs,
    task_key,
    task_of,
)

if TYPE_CHECKING:
    from tollhouse.budgets.gate import BudgetGate
    from tollhouse.capacity import Capacity
    from tollhouse.gateway.dispatch import Dispatcher
    from tollhouse.gateway.routing import Router
    from tollhouse.ids import RequestIds

log = logging.getLogger("tollhouse.trust")

TASK_HEADER = "X-Tollhouse-Task"
STEP_HEADER = "X-Tollhouse-Step"
INPUTS_HEADER = "X-Tollhouse-Inputs"
CACHE_HEADER = "X-Tollhouse-Cache"
ASSUMES_HEADER = "X-Tollhouse-Assumes"
LABEL = re.compile(r"^[A-Za-z0-9._:~@+=-]{1,200}$")
EXPLICIT = frozenset({"header", "key"})  # attributions a caller chose, not inferred
MAX_KEPT = 4096  # requests kept in memory for verify, at most
MAX_REPLAYS = 16  # divergence replays waiting at once; more samples are dropped


@dataclass(slots=True)
class Watch:
    """What the trust service follows about one request."""

    task: str | None = None
    step: str | None = None
    inputs: tuple[str, ...] | None = None
    cache_key: str | None = None
    assumes: str | None = None
    hit: CacheEntry | None = None
    sampled: bool = False
    kept: KeptRequest | None = None
    recorded: bool = False  # the step is in the store already (before the reply)
    scoped_for: str = ""  # the project the cache key was made for

    @property
    def needs_project(self) -> bool:
        """Inputs to check in the task's project, or a cache scoped to it."""
        return bool(self.inputs) or self.cache_key is not None


def label(value: str, header: str) -> str:
    value = value.strip()
    if not LABEL.match(value):
        raise BadRequest(
            f"{header} must be 1-200 letters, digits or . _ : ~ @ + = -, got {value[:40]!r}"
        )
    return value


class TrustService:
    """Trajectories, the gate, actions, the cache and divergence, for one gateway.

    >>> decision = await service.gate("acme", "refund-4711", "refund", True, None)
    >>> decision.allow, decision.tainted_by
    (False, ('3',))
    """

    def __init__(self, settings: TrustSettings, store: TrustStore, writer: LedgerWriter) -> None:
        self.settings = settings
        self.store = store
        self.writer = writer
        self.cache_models = frozenset(settings.cache_models)
        self.kept: dict[tuple[str, str], KeptRequest] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._replays: set[asyncio.Task[None]] = set()
        self.runner: PrimaryRunner | None = None
        self.capacity: Capacity | None = None
        self._credit = 0.0

    def start(
        self,
        router: Router,
        dispatcher: Dispatcher,
        ids: RequestIds,
        deadline_s: float,
        budgets: BudgetGate | None = None,
    ) -> None:
        """On gateway start-up: reload the state a previous run left, and get the
        means to re-run requests on the primary."""
        load = getattr(self.store, "load", None)
        if load is not None:
            conn = connect(self.writer.path, readonly=True)
            try:
                load(conn)
            finally:
                conn.close()
        self.runner = PrimaryRunner(router, dispatcher, self.writer, ids, deadline_s, budgets)
        self.capacity = dispatcher.capacity

    # -- hooks on the request path
    def watch(
        self, headers: Mapping[str, str], out: Outgoing, match: Mapping[str, str]
    ) -> Watch | None:
        task, cache = headers.get(TASK_HEADER), headers.get(CACHE_HEADER)
        if task is None and cache is None and not self.cache_models:
            return None
        if cache is not None and cache.strip().lower() not in (USE, SKIP):
            raise BadRequest(f"{CACHE_HEADER} must be 'use' or 'skip', got {cache[:40]!r}")
        cached = wants_cache(cache, out.call.model, out.payload, self.cache_models)
        if task is None and not cached:
            return None
        w = Watch()
        if task is not None:
            w.task = label(task, TASK_HEADER)
            step = headers.get(STEP_HEADER)
            w.step = None if step is None else label(step, STEP_HEADER)
            raw = headers.get(INPUTS_HEADER)
            w.inputs = (
                None if raw is None else tuple(label(i, INPUTS_HEADER) for i in parse_inputs(raw))
            )
        if cached:
            self.scope_cache(w, out)
            w.assumes = headers.get(ASSUMES_HEADER)
        if w.task is not None and self.settings.keep_requests != "none":
            w.kept = keep(out, dict(match), "")
        return w

    def scope_cache(self, w: Watch, out: Outgoing) -> None:
        """Key the cache entry to the request's project and client key: one project's
        answers are never served to another. Made again once a process lookup has
        told the project."""
        scope = f"{out.project}:{hash_key(out.client_key)}"
        w.cache_key = cache_key(out.dialect.name, out.call.path, out.payload, scope)
        w.scoped_for = out.project

    async def before_dispatch(self, watched: Watched, out: Outgoing, request_id: str) -> Lookup:
        """With the project known: the step's inputs checked, then the cache asked."""
        w = _own(watched)
        if w.cache_key is not None and w.scoped_for != out.project:
            self.scope_cache(w, out)  # the process lookup told whose it is
        await self.check_inputs(w, out.project)
        return await self.lookup(w, request_id)

    async def check_inputs(self, w: Watch, project: str | None) -> None:
        """Before dispatch: the step's declared inputs name steps its task has (else a 400
        in the client's dialect), as the gate's ``inputs`` do: a typo would read nothing
        and hide the taint. Shared state out of reach: the step reads every step so far."""
        if w.task is None or not w.inputs:
            return
        key = task_key(project or UNATTRIBUTED, w.task)
        try:
            trajectory = await self._trajectory(key)
        except GatewayError as err:
            if err.status < 500:
                raise
            w.inputs = None  # can't tell what it read: the default, which hides nothing
            return
        _check_inputs(trajectory, w.task, w.inputs, INPUTS_HEADER)

    async def lookup(self, w: Watch, request_id: str) -> Lookup:
        """A cached answer for this request, or the miss to tell the client."""
        if w.cache_key is None:
            return Lookup()
        outcome, entry = await self.store.cache_get(w.cache_key, w.assumes)
        self.writer.execute(
            [
                (
                    "INSERT INTO trust_cache_lookups (ts, request_id, outcome) VALUES (?, ?, ?)",
                    (now_iso(), request_id, outcome),
                )
            ]
        )
        if outcome != HIT or entry is None:
            return Lookup(outcome.replace("_", "-"))  # told to the client: miss | validity-miss
        w.hit = entry
        return Lookup(answer=CachedAnswer(entry.body, entry.content_type, entry.served_by))

    def after_dispatch(
        self, watched: Watched | None, out: Outgoing, primary: bool, match: Mapping[str, str]
    ) -> Watch | None:
        """After dispatch: follow a degraded answer too, if it is sampled for divergence."""
        w = None if watched is None else _own(watched)
        if w is not None and w.kept is not None and w.kept.project != out.project:
            w.kept = replace(w.kept, project=out.project)  # kept before the process lookup ended
        if not primary and self.runner is not None and self._sampled():
            w = w or Watch()
            w.sampled = len(self._replays) < MAX_REPLAYS
            if w.kept is None and w.sampled:
                w.kept = keep(out, dict(match), "")
        return w

    def finished(self, watched: Watched, ex: Exchange) -> None:
        """After the response: record the step, store a fresh answer, queue a replay."""
        try:
            self._finished(_own(watched), ex)
        except Exception:  # a trust bug must not cost the request its ledger row
            log.exception("trust bookkeeping failed for %s", ex.request_id)

    async def before_reply(self, watched: Watched, ex: Exchange) -> None:
        """A whole answer (not a stream): its step is in the store before the client has
        it, so the agent's next call, its gate on whichever instance, sees this step."""
        w = _own(watched)
        if w.task is None or ex.route is None or not 200 <= ex.status < 300:
            return
        try:
            data = b"".join(ex.capture or ())
            why = self._degraded_because(ex, w, ex.complete())
            await self._record_step(ex, w, why, data)
            w.recorded = True
        except Exception:  # recorded after the reply instead, as streams are
            log.exception("trust: recording step of %s before the reply failed", ex.request_id)

    def _finished(self, w: Watch, ex: Exchange) -> None:
        if ex.route is None or not 200 <= ex.status < 300:
            return  # nothing answered: not a step the agent can act on
        data = b"".join(ex.capture or ())
        complete = ex.complete()
        why = self._degraded_because(ex, w, complete)
        if w.task is not None and not w.recorded:
            self._track(self._record_step(ex, w, why, data))
        fresh = why is None
        whole = ex.capture is not None  # None: too large to keep (relay.py), so never cached
        if (
            w.cache_key is not None
            and w.hit is None
            and whole
            and storable(ex.status, complete, fresh)
        ):
            self._track(self._cache_put(ex, w, data))
        if w.sampled and w.kept is not None and not ex.primary and whole:
            kept = _with_answer(w.kept, w, ex, data)
            task = spawn(self._diverge(kept, w), name="tollhouse-divergence")
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    def _degraded_because(self, ex: Exchange, w: Watch, complete: bool) -> str | None:
        if w.hit is not None:
            age = max(0, round(time.time() - w.hit.created))
            return f"answered from the cache ({w.hit.served_by}, {age}s old), not freshly"
        if not ex.primary and ex.route is not None:
            first = next((a for a in ex.attempts if a.n == 1), None)
            primary = f"{first.provider}/{first.model}" if first else "the primary"
            return (
                f"answered by the fallback {ex.route.provider.name}/{ex.route.model} "
                f"instead of {primary}"
            )
        if not complete:
            return "the answer was incomplete (the stream broke off)"
        return None

    async def _record_step(self, ex: Exchange, w: Watch, why: str | None, data: bytes) -> None:
        assert w.task is not None
        project = ex.project() or UNATTRIBUTED  # settled by now
        key = task_key(project, w.task)
        step = await self.store.record_step(
            key, w.step, degraded_because=why, inputs=w.inputs, request_id=ex.request_id
        )
        mode = self.settings.keep_requests
        self.kept.pop((key, step.id), None)
        if w.kept is not None and (mode == "all" or why is not None):
            self.kept[(key, step.id)] = _with_answer(w.kept, w, ex, data)
            while len(self.kept) > MAX_KEPT:  # the oldest go first; approve still works
                del self.kept[next(iter(self.kept))]

    async def _cache_put(self, ex: Exchange, w: Watch, data: bytes) -> None:
        assert w.cache_key is not None and ex.route is not None and ex.call is not None
        now = time.time()
        content_type = "text/event-stream" if ex.call.stream else "application/json"
        served_by = f"{ex.route.provider.name}/{ex.route.model}"
        await self.store.cache_put(
            CacheEntry(
                w.cache_key,
                w.assumes,
                data,
                content_type,
                served_by,
                now,
                now + self.settings.cache_ttl_s,
            )
        )

    def _track(self, coro: Coroutine[object, object, None]) -> None:
        task = spawn(coro, name="tollhouse-trust")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _sampled(self) -> bool:
        """Every 1/rate-th fallback answer: deterministic, and evenly spread."""
        self._credit += self.settings.divergence_sample
        if self._credit < 1.0:
            return False
        self._credit -= 1.0
        return True

    async def caught_up(self) -> None:
        """Wait for the steps and cache entries already answered to be recorded."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def stop_replays(self) -> int:
        """Shutdown: drop the divergence replays still waiting (samples, not records).

        A replay may wait minutes for its primary to recover; a SIGTERM must not.
        Returns how many were dropped.
        """
        for task in self._replays:
            task.cancel()
        return len(self._replays)

    async def settle(self) -> None:
        """For tests and shutdown: every background recording and replay done."""
        await self.caught_up()
        while self._replays:
            await asyncio.gather(*self._replays, return_exceptions=True)

    # -- the gate and actions
    async def trajectory(self, caller: Attribution, task: str) -> Trajectory | None:
        """The caller's trajectory for ``task`` (see :meth:`scope`)."""
        return await self._trajectory(await self.scope(caller, task))

    async def scope(self, caller: Attribution, task: str) -> str:
        """The key of the caller's ``task``: two projects' task ids never meet.

        A caller that names its project (the project header, or the project's key)
        gets that project's task. One known only by its process, or not at all
        (a local tool, ``tollhouse approve``), gets its process's project's task,
        else the one project that has the task; several are a 409 saying how to pick.
        """
        project = caller.project
        if caller.how in EXPLICIT:
            return task_key(project, task)
        await self.caught_up()
        if await self.store.trajectory(task_key(project, task)) is not None:
            return task_key(project, task)
        owners = await self.store.projects_of(task)
        if len(owners) > 1:
            raise Conflict(
                f"task {task!r} exists in projects {', '.join(owners)}; say whose with "
                "X-Tollhouse-Project, the project's API key, or `tollhouse approve --project`"
            )
        return task_key(owners[0] if owners else project, task)

    async def _trajectory(self, key: str) -> Trajectory | None:
        await self.caught_up()
        return await self.store.trajectory(key)

    async def gate(
        self,
        caller: Attribution,
        task: str,
        action: str,
        irreversible: bool,
        inputs: Sequence[str] | None,
    ) -> GateDecision:
        trajectory = await self.trajectory(caller, task)
        _check_inputs(trajectory, task, inputs, '"inputs"')
        if irreversible:  # another instance may have answered steps this one can't see
            await self.store.blind_spots()
        decision = decide(
            trajectory,
            irreversible=irreversible,
            task=task,
            inputs=inputs,
            unknown=self.settings.unknown_task,
        )
        self.writer.execute(
            [
                (
                    "INSERT INTO trust_gate (ts, project, task, action, irreversible, allow, "
                    "tainted_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        now_iso(),
                        caller.project,
                        task,
                        action,
                        int(irreversible),
                        int(decision.allow),
                        _json_list(decision.tainted_by),
                    ),
                )
            ]
        )
        return decision

    async def begin_action(
        self, caller: Attribution, key: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Gate, then claim ``key``: (201, claim) or (200, replayed record); raises otherwise."""
        project, fp = caller.project, fingerprint(body)
        found = await self.store.find_action(project, key)
        if found is None:
            decision = await self.gate(
                caller, body["task"], body["name"], body["irreversible"], body.get("inputs")
            )
            if decision.held:
                raise Held(decision.held_because(body["name"], body["task"]), decision.as_dict())
            record = ActionRecord(
                "act_" + secrets.token_hex(12),
                project,
                key,
                fp,
                body["task"],
                body["name"],
                body["irreversible"],
                bool(decision.tainted_by),
            )
            outcome, found = await self.store.claim(record)
            if outcome is Claim.CLAIMED:
                return 201, {**record.as_dict(), "gate": decision.as_dict()}
        return 200, _replay(found, fp, key)

    async def complete_action(
        self, caller: Attribution, action_id: str, body: dict[str, Any]
    ) -> ActionRecord:
        """Report an action's outcome: only its own project may (another gets the same
        404 as for an id that never existed, so ids can't be probed across projects)."""
        status = body.get("status")
        if status not in OUTCOMES:
            raise BadRequest(f'"status" must be one of {", ".join(OUTCOMES)}')
        found = await self.store.action(action_id)
        if found is None or found.project != caller.project:
            raise NotFound(
                f"project {caller.project!r} has no action {action_id!r} (or it is older than "
                "the key retention); report it as the project that claimed it"
            )
        try:
            return await self.store.complete(action_id, status, body.get("result"))
        except KeyError:  # expired between the two reads
            raise NotFound(f"no action {action_id!r}: it is older than the key retention") from None
        except ValueError as exc:
            raise Conflict(str(exc)) from None

    # -- clearing taint
    async def verify(
        self, caller: Attribution, task: str, step_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        accepts = _acceptance(body, self.settings.verify_min_similarity)  # before re-running
        key = await self.scope(caller, task)
        step = await self._step(key, step_id)
        kept = self.kept.get((key, step_id))
        if kept is not None and kept.request_id != step.request_id:
            del self.kept[(key, step_id)]  # an earlier run's: the step ran again elsewhere
            kept = None
        if kept is None or self.runner is None:
            raise Conflict(
                f"step {step_id} of task {task!r} has no kept request to re-run "
                f"(trust.keep_requests = {self.settings.keep_requests!r} keeps "
                "degraded steps only, in memory); have a person approve it instead: "
                f"tollhouse approve {task} {step_id}"
            )
        rerun = await self.runner.run(kept, "verify")
        loop = asyncio.get_running_loop()
        score = await loop.run_in_executor(None, similarity, kept.answer, rerun.text)
        self._divergence_row(kept, "verify", rerun.served_by, score, task, step_id)
        accepted = accepts(score)
        if accepted:
            step = await self._clear(key, step_id, VERIFIED, rerun.served_by, score)
        return {
            "task": task,
            "step": step_id,
            "verified": accepted,
            "similarity": score,
            "answer": rerun.text,
            "served_by": rerun.served_by,
            "request_id": rerun.request_id,
            "task_trust": await self._task_trust(key),
            "step_cleared": step.cleared,
        }

    async def approve(
        self, caller: Attribution, task: str, step_id: str, by: str
    ) -> dict[str, Any]:
        key = await self.scope(caller, task)
        await self._step(key, step_id)
        step = await self._clear(key, step_id, APPROVED, by, None)
        return {
            "task": task,
            "step": step_id,
            "approved": True,
            "by": by,
            "step_cleared": step.cleared,
            "task_trust": await self._task_trust(key),
        }

    async def _clear(
        self, key: str, step_id: str, how: str, by: str | None, similarity: float | None
    ) -> Step:
        step = await self.store.clear_step(key, step_id, how, by, similarity)
        self.kept.pop((key, step_id), None)  # cleared: nothing left to re-run
        return step

    async def _task_trust(self, key: str) -> str:
        """What the gate would say of an irreversible action of the task now."""
        trajectory = await self._trajectory(key)
        return decide(trajectory, irreversible=True, task=task_of(key)[1]).trust

    async def _step(self, key: str, step_id: str) -> Step:
        trajectory = await self._trajectory(key)
        task = task_of(key)[1]
        if trajectory is None:
            raise NotFound(f"no model calls are recorded for task {task!r}")
        step = trajectory.steps.get(step_id)
        if step is None:
            known = ", ".join(s.id for s in trajectory.ordered())
            raise NotFound(f"task {task!r} has no step {step_id!r} (its steps: {known})")
        return step

    # -- fallback divergence
    async def _diverge(self, kept: KeptRequest, w: Watch) -> None:
        assert self.runner is not None
        route = self.runner.primary(kept)
        give_up = time.monotonic() + self.settings.divergence_max_wait_s
        pause = 5.0
        while True:
            capacity = self.capacity
            if capacity is None or capacity.unavailable(route.provider.name, route.model) is None:
                try:
                    rerun = await self.runner.run(kept, "divergence")
                    break
                except BudgetExceeded as err:  # not worth the project's last money
                    log.info("divergence replay of %s skipped: %s", kept.request_id, err)
                    return
                except GatewayError as err:
                    log.debug("divergence replay of %s failed: %s", kept.request_id, err)
            if time.monotonic() + pause > give_up:
                return
            await asyncio.sleep(pause)  # the primary is down: wait for it to recover
            pause = min(60.0, pause * 2)
        loop = asyncio.get_running_loop()
        score = await loop.run_in_executor(None, similarity, kept.answer, rerun.text)
        self._divergence_row(kept, "fallback", rerun.served_by, score, w.task, w.step)

    def _divergence_row(
        self,
        kept: KeptRequest,
        kind: str,
        primary: str,
        score: float,
        task: str | None,
        step: str | None,
    ) -> None:
        self.writer.execute(
            [
                (
                    "INSERT INTO trust_divergence (ts, request_id, kind, task, step, "
                    "primary_model, other_model, similarity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (now_iso(), kept.request_id, kind, task, step, primary, kept.served_by, score),
                )
            ]
        )


def _check_inputs(
    trajectory: Trajectory | None, task: str, inputs: Sequence[str] | None, where: str
) -> None:
    """An input the task never recorded is a mistake (a typo, another task's step, a step
    not answered yet): it would read nothing, and so let taint through unseen."""
    unknown = trajectory.unknown(inputs or ()) if trajectory is not None else list(inputs or ())
    if unknown:
        known = ", ".join(s.id for s in trajectory.ordered()) if trajectory else "none"
        raise BadRequest(
            f"{where}: task {task!r} has no step {', '.join(map(repr, unknown))} "
            f"(its steps: {known}); name steps it has answered, or leave {where} out "
            "for every step so far"
        )


def _replay(found: ActionRecord | None, fp: str, key: str) -> dict[str, Any]:
    if found is None:
        raise Conflict(f"Idempotency-Key {key!r} is being claimed; retry in a moment")
    if found.fingerprint != fp:
        raise Unprocessable(
            f"Idempotency-Key {key!r} was already used for a different action or payload; "
            "use a new key for a new action"
        )
    if found.status == IN_FLIGHT:
        raise Conflict(
            f"the action with Idempotency-Key {key!r} is still in flight ({found.id}); "
            "wait for its outcome and retry"
        )
    return found.as_dict()


def _own(watched: Watched) -> Watch:
    """The pipeline hands back what :meth:`TrustService.watch` gave it."""
    assert isinstance(watched, Watch)
    return watched


def build_trust(
    settings: TrustSettings, writer: LedgerWriter, store: TrustStore | None = None
) -> TrustService:
    """The trust service; its state in this process unless ``store`` (shared) is given."""
    store = store or LedgerTrustStore(
        writer,
        retention_s=settings.task_retention_s,
        key_retention_s=settings.idempotency_retention_s,
        cache_entries=settings.cache_max_entries,
    )
    return TrustService(settings, store, writer)


def _acceptance(body: dict[str, Any], default: float) -> Callable[[float], bool]:
    """Whether the caller accepts a similarity score, from its verify body (checked first)."""
    accept = body.get("accept")
    if accept is not None:
        if not isinstance(accept, bool):
            raise BadRequest('"accept" must be true or false')
        return lambda _score: accept
    threshold = body.get("min_similarity", default)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 <= threshold <= 1
    ):
        raise BadRequest('"min_similarity" must be a number from 0 to 1, e.g. 0.8')
    return lambda score: score >= threshold


def _with_answer(kept: KeptRequest, w: Watch, ex: Exchange, data: bytes) -> KeptRequest:
    route = ex.route
    served = f"{route.provider.name}/{route.model}" if route else ""
    if w.hit is not None:
        served = f"cache:{w.hit.served_by}"
    return replace(
        kept,
        request_id=ex.request_id,
        answer=answer_text(ex.dialect.name, data),
        served_by=served,
    )


def hash_key(key: str | None) -> str:
    """Scopes cache entries to a client key without keeping the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else "-"


def _json_list(items: Sequence[str]) -> str:
    return json.dumps(list(items))
