"""Recording a finished request: its row sealed, queued, submitted; its budget settled.

The :class:`Recorder` owns everything between "the client has its answer"
and "the row is in the writer's hands": the crash journal's seal (before the
answer's last byte, see :mod:`tollhouse.ledger.journal`), the backlog that
keeps row-building off the latency path (:mod:`.backlog`), a process lookup
still running, the budget reservation settled to the real cost, metrics and
the request log. :func:`entry_of` makes the row from an :class:`Exchange`
(through :func:`tollhouse.ledger.entry.build_entry`, as replays and the
interceptor do).
"""

from __future__ import annotations

import asyncio
import time

from tollhouse.attribution.chain import UNATTRIBUTED, Attribution, Attributor, attribution_of
from tollhouse.budgets.gate import BudgetGate
from tollhouse.gateway.backlog import Backlog
from tollhouse.gateway.models import Exchange, PendingAttribution, RequestHooks
from tollhouse.ledger.entry import LedgerEntry, build_entry
from tollhouse.ledger.fusion import fuse
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metrics import GatewayMetrics
from tollhouse.pricing import Cost
from tollhouse.requestlog import log_request
from tollhouse.tasks import spawn
from tollhouse.telemetry import Telemetry


class Recorder:
    """Turns finished exchanges into ledger rows, off the request's latency."""

    def __init__(
        self,
        writer: LedgerWriter,
        attributor: Attributor,
        *,
        budgets: BudgetGate | None = None,
        metrics: GatewayMetrics | None = None,
        hooks: RequestHooks | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.writer = writer
        self.telemetry = telemetry
        self.attributor = attributor
        self.budgets = budgets
        self.metrics = metrics
        self.hooks = hooks
        self._recording: set[asyncio.Task[None]] = set()
        self._backlog: Backlog[Exchange] = Backlog(self._record_now)

    def sealer(self, ex: Exchange) -> None:
        """Give ``ex`` the seal, when the ledger journals (the relay calls it)."""
        if self.writer.journal is not None:
            ex.seal = self.seal

    def record(self, ex: Exchange) -> None:
        """The request is over: its hooks are told at once, its row soon."""
        if ex.watch is not None and self.hooks is not None:
            self.hooks.finished(ex.watch, ex)  # at once: the agent's next call may ask the gate
        if ex.budget is None:
            self._backlog.add(ex)
        else:  # a reservation is settled at once, to the real cost (budgets are exact)
            self._record_now(ex)

    def while_upstream(self) -> None:
        """Earlier requests' rows, while this one's upstream works."""
        self._backlog.while_upstream()

    def drain(self) -> None:
        """Every finished request's row queued and its metrics counted."""
        self._backlog.drain()

    async def settle(self) -> None:
        """Every row of a finished request submitted (a process lookup may still run)."""
        self._backlog.drain()
        while self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)

    def seal(self, ex: Exchange) -> None:
        """Journal the row now, before the client can have the whole answer (journal.py).

        A stream may be sealed again as its last events go out: the last line wins.
        """
        pending = ex.attribution
        final = _known(pending)
        who = _settled(pending) if final else Attribution(UNATTRIBUTED, "pending")
        previous = ex.sealed
        ex.sealed = self.writer.seal(entry_of(ex, who))
        ex.sealed_as = _seal_state(ex) if final else ()
        if previous is not None:
            self.writer.unpin(previous)

    def _record_now(self, ex: Exchange) -> None:
        pending = ex.attribution
        if _known(pending):
            self._submit(ex, _settled(pending))
        else:  # the process lookup is still running: finish off the request path
            task = spawn(self._record_later(ex), name="tollhouse-record")
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)

    async def _record_later(self, ex: Exchange) -> None:
        assert ex.attribution is not None
        self._submit(ex, await self.attributor.finish(ex.attribution))

    def _submit(self, ex: Exchange, who: Attribution) -> None:
        cost = Cost(None, "unpriced")
        sealed = ex.sealed
        entry: LedgerEntry
        try:
            if sealed is not None and ex.sealed_as and ex.sealed_as == _seal_state(ex):
                entry = sealed.entry  # as journaled: nothing changed since (a client gone...)
            else:
                entry = entry_of(ex, who)
            if sealed is None:
                cost = self.writer.submit(entry)
            else:
                cost = self.writer.submit_sealed(sealed, entry)
        finally:  # a reservation must never outlive its request
            if ex.budget is not None and self.budgets is not None:
                self.budgets.settle(ex.budget, cost.usd)
        if self.metrics is not None:
            self.metrics.observe(entry, cost, ex.upstream_s * 1000)
        if self.telemetry is not None:
            self.telemetry.observe(entry, cost)
        log_request(entry, cost)


def entry_of(ex: Exchange, who: Attribution) -> LedgerEntry:
    """The ledger row of ``ex``, paid for by ``who``."""
    route, call = ex.route, ex.call
    entry = build_entry(
        ts=ex.ts,
        request_id=ex.request_id,
        who=who,
        tags=ex.tags,
        dialect=ex.dialect.name,
        status=ex.status,
        stream=bool(call and call.stream),
        latency_s=time.perf_counter() - ex.started,
        ttfb_s=ex.ttfb,
        provider=route.provider if route else None,
        model_requested=call.model if call else None,
        model_routed=route.model if route else None,
        metered=ex.metered,
        incomplete=ex.incomplete,
        error=ex.error,
        trust=None if route is None else ("full" if ex.primary else "degraded"),
        attempts=ex.attempts,
    )
    if ex.fusion_calls is not None:  # a fused model: the row carries every call's sum
        return fuse(entry, list(ex.fusion_calls), degraded=not ex.primary)
    return entry


def _seal_state(ex: Exchange) -> tuple[object, ...]:
    m = ex.metered
    return (ex.status, ex.incomplete, ex.error, m and m.complete, m and m.usage)


def _known(pending: PendingAttribution | None) -> bool:
    """Whether the attribution is settled (no process lookup still running)."""
    return pending is None or isinstance(pending, Attribution) or pending.done()


def _settled(pending: PendingAttribution | None) -> Attribution:
    if isinstance(pending, Attribution):
        return pending
    found = (
        None if pending is None or pending.cancelled() or pending.exception() else pending.result()
    )
    if found is None:
        return Attribution(UNATTRIBUTED, UNATTRIBUTED)
    return attribution_of(found)
