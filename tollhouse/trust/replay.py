"""Running a kept request again on its primary only: no cache, no fallback.

Used by ``verify`` and by the sampled fallback-divergence replays. The call
goes through the same :class:`~tollhouse.gateway.dispatch.Dispatcher` (capacity,
retries on the primary) with the gateway's own key (clients' keys are never
kept), is metered like any other and gets its own ledger row, tagged
``tollhouse=verify`` or ``tollhouse=divergence``. It spends the project's
money, so it is held against the project's budget like any call: a hard
budget that can't take its worst case refuses it (``BudgetExceeded``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tollhouse.attribution.chain import Attribution
from tollhouse.budgets.gate import BudgetGate
from tollhouse.capacity import ErrorClass
from tollhouse.errors import UpstreamUnavailable
from tollhouse.gateway.dispatch import Dispatch, Dispatcher
from tollhouse.gateway.models import Outgoing, Route
from tollhouse.gateway.routing import Router
from tollhouse.ids import RequestIds
from tollhouse.ingress import DIALECTS
from tollhouse.ledger.entry import LedgerEntry, build_entry
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering import meter_body, stream_meter
from tollhouse.metering.usage import Metered
from tollhouse.trust.text import answer_text

# Request headers worth keeping for a re-run: none of them carries a credential.
KEPT_HEADERS = ("content-type", "anthropic-version", "anthropic-beta", "openai-beta")


@dataclass(frozen=True, slots=True)
class KeptRequest:
    """A request kept (in memory only) so its step can be verified or replayed."""

    dialect: str
    path: str
    match: dict[str, str]
    payload: dict[str, Any]
    method: str
    query: str
    headers: dict[str, str]
    project: str
    request_id: str
    answer: str = ""  # the text the client got
    served_by: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def keep(out: Outgoing, match: dict[str, str], request_id: str) -> KeptRequest:
    headers = {k: v for k, v in out.headers.items() if k.lower() in KEPT_HEADERS}
    query = "&".join(p for p in out.query.split("&") if p and not p.startswith("key="))
    return KeptRequest(
        out.dialect.name,
        out.call.path,
        match,
        out.payload,
        out.method,
        query,
        headers,
        out.project,
        request_id,
    )


@dataclass(frozen=True, slots=True)
class Rerun:
    text: str
    served_by: str
    request_id: str


class PrimaryRunner:
    """Runs :class:`KeptRequest` s on the primary and meters them."""

    def __init__(
        self,
        router: Router,
        dispatcher: Dispatcher,
        writer: LedgerWriter,
        ids: RequestIds,
        deadline_s: float,
        budgets: BudgetGate | None = None,
    ) -> None:
        self.router = router
        self.dispatcher = dispatcher
        self.writer = writer
        self.ids = ids
        self.deadline_s = deadline_s
        self.budgets = budgets

    def primary(self, kept: KeptRequest) -> Route:
        # The dialect reads the model where it lives (Gemini: the URL's "target").
        model = DIALECTS[kept.dialect].call(kept.path, kept.match, kept.payload).model
        return self.router.candidates(model, kept.dialect)[0]

    async def run(self, kept: KeptRequest, why: str) -> Rerun:
        route = self.primary(kept)
        budgets = self.budgets
        hold = (
            None if budgets is None else await budgets.reserve(kept.project, [route], kept.payload)
        )
        cost: Decimal | None = None
        try:
            rerun, cost = await self._run(kept, why, route)
        finally:  # a reservation never outlives its call
            if hold is not None and budgets is not None:
                budgets.settle(hold, cost)
        return rerun

    async def _run(self, kept: KeptRequest, why: str, route: Route) -> tuple[Rerun, Decimal | None]:
        dialect = DIALECTS[kept.dialect]
        call = dialect.call(kept.path, kept.match, kept.payload)
        out = Outgoing(
            dialect,
            call,
            kept.payload,
            json.dumps(kept.payload).encode(),
            kept.method,
            kept.query,
            kept.headers,
            None,
            kept.project,
            time.monotonic() + self.deadline_s,
        )
        d, ts, started = Dispatch(out), datetime.now(UTC), time.perf_counter()
        answer = await self.dispatcher.dispatch(d, [route], alias=False)
        async with answer.response:
            status = answer.response.status
            data = answer.body if answer.body is not None else await answer.response.read()
            metered = _meter(route.dialect, data, call.stream and status < 300, answer.hide_usage)
            if metered.usage is not None:
                answer.lease.settle(metered.usage.input_tokens + metered.usage.output_tokens)
            answer.lease.release(None if status < 400 else ErrorClass.CLIENT)
        request_id = self.ids.next()
        cost = self.writer.submit(
            _entry(kept, why, request_id, ts, started, status, route, metered, call.stream, d)
        )
        served = f"{route.provider.name}/{route.model}"
        if status >= 300:
            raise UpstreamUnavailable(f"the primary {served} answered {status}; try again later")
        return Rerun(answer_text(route.dialect, data), served, request_id), cost.usd


def _meter(dialect: str, data: bytes, stream: bool, hide: bool) -> Metered:
    if not stream:
        return meter_body(dialect, data)
    meter = stream_meter(dialect, hide_usage_chunk=hide)
    meter.feed(data)
    meter.finish()
    return meter.result()


def _entry(
    kept: KeptRequest,
    why: str,
    request_id: str,
    ts: datetime,
    started: float,
    status: int,
    route: Route,
    m: Metered,
    stream: bool,
    d: Dispatch,
) -> LedgerEntry:
    return build_entry(
        ts=ts,
        request_id=request_id,
        who=Attribution(kept.project, "trust"),
        tags={"tollhouse": why, "replay_of": kept.request_id},
        dialect=kept.dialect,
        status=status,
        stream=stream,
        latency_s=time.perf_counter() - started,
        ttfb_s=None,
        provider=route.provider,
        model_requested=str(kept.payload.get("model") or route.model),
        model_routed=route.model,
        metered=m,
        incomplete=False,
        error=None,
        trust="full",
        attempts=d.attempts,
    )
