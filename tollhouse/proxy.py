"""One metered call, end to end: the thin async shell around the sans-io core.

Per request: parse just enough of the body (model, stream), attribute it,
let the dispatcher get it answered (capacity, retries, fallback), relay the
answer as it arrives while the provider dialect's meter watches the bytes,
and hand one ledger entry (with every attempt) to the writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tollhouse import sane
from tollhouse.attribution.chain import (
    PROJECT_HEADER,
    UNATTRIBUTED,
    Attribution,
    Attributor,
    header_tags,
)
from tollhouse.backlog import Backlog
from tollhouse.budgets import BudgetGate, Hold
from tollhouse.budgets.gate import BUDGET_HEADER
from tollhouse.connections import read_body
from tollhouse.dispatch import Answer, Attempt, Dispatch, Dispatcher, Outgoing
from tollhouse.errors import BadRequest, GatewayError, InternalError, UnknownModel
from tollhouse.ids import RequestIds
from tollhouse.ingress import Call, Dialect, parse_json_body, render_error
from tollhouse.ledger.entry import LedgerEntry
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.usage import Metered
from tollhouse.metrics import GatewayMetrics
from tollhouse.pricing import Cost
from tollhouse.relay import relay_body, relay_stream
from tollhouse.requestlog import log_request
from tollhouse.routing import Route, Router
from tollhouse.tasks import spawn
from tollhouse.upstream import Upstreams, downstream_headers, refuse_redirect

log = logging.getLogger("tollhouse.proxy")

REQUEST_ID_HEADER = "X-Tollhouse-Request-Id"
DEADLINE_HEADER = "X-Tollhouse-Deadline-Ms"
MAX_DEADLINE_MS = 86_400_000.0  # a day: past it, a deadline is a mistake (or inf)
CLIENT_CLOSED = 499  # nginx's status for "client closed the request"; ledger only


@dataclass(slots=True)
class Exchange:
    """What is known about one request so far; becomes its ledger entry."""

    dialect: Dialect
    started: float
    ts: datetime
    request_id: str
    status: int = 0
    call: Call | None = None
    route: Route | None = None  # the route that answered
    primary: bool = True
    metered: Metered | None = None
    ttfb: float | None = None
    incomplete: bool = False
    delivered: bool = False  # a stream's end marker reached the client
    error: str | None = None
    attribution: Any = None  # Attribution, or a pending process lookup
    tags: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    cache: str | None = None  # "miss" | "validity-miss" (a hit answers on its own)
    watch: Any = None  # tollhouse.trust.service.Watch: a labelled or cached request
    capture: list[bytes] | None = None  # the answer as relayed, when trust needs it
    budget: Hold | None = None
    upstream_s: float = 0.0  # waiting on the upstream: dispatch, then its body or stream
    seal: Any = None  # Gateway._seal when the ledger journals: called before the last byte
    sealed: Any = None  # tollhouse.ledger.writer.Sealed, and what it was sealed with
    sealed_as: tuple[Any, ...] = ()

    def provenance(self) -> dict[str, str]:
        headers = {REQUEST_ID_HEADER: self.request_id}
        if self.budget is not None and self.budget.warning:
            headers[BUDGET_HEADER] = "warn; " + self.budget.warning
        if self.cache is not None:  # a cache lookup that missed: plainly, or on its assumptions
            headers["X-Tollhouse-Cache"] = self.cache
        tried = [a for a in self.attempts if not a.skipped]
        headers["X-Tollhouse-Attempts"] = str(len(tried))
        if self.route is not None and self.status < 400:  # an error was served by no model
            headers["X-Tollhouse-Served-By"] = f"{self.route.provider.name}/{self.route.model}"
            headers["X-Tollhouse-Trust"] = "full" if self.primary else "degraded"
        who = self.attribution
        if isinstance(who, Attribution):  # known by now (a process lookup may still run)
            headers[PROJECT_HEADER] = f"{header_safe(who.project)}; by={who.how}"
        return headers


def header_safe(text: str) -> str:
    """``text`` as a header value: printable ASCII, the rest percent-encoded."""
    if text.isascii() and text.isprintable():
        return text
    return quote(sane.text(text), safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


class Gateway:
    """Serves the metered endpoints. Built by :func:`tollhouse.app.create_app`."""

    def __init__(
        self,
        router: Router,
        attributor: Attributor,
        writer: LedgerWriter,
        upstreams: Upstreams,
        dispatcher: Dispatcher,
        *,
        max_body: int,
        deadline_ms: int,
        trust: Any = None,
        budgets: BudgetGate | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.router = router
        self.attributor = attributor
        self.writer = writer
        self.upstreams = upstreams
        self.dispatcher = dispatcher
        self.max_body = max_body
        self.deadline_ms = deadline_ms
        self.trust = trust  # tollhouse.trust.service.TrustService
        self.budgets = budgets
        self.metrics = metrics
        self.ids = RequestIds()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._recording: set[asyncio.Task[None]] = set()
        self._backlog: Backlog[Exchange] = Backlog(self._record_now)

    @property
    def in_flight(self) -> int:
        """Client requests being served right now."""
        return self._active

    async def settle(self) -> None:
        """Wait until no request is in flight and every ledger entry is committed.

        For tests, the demo and shutdown: the writer's flush alone can miss a
        row whose process lookup is still running.
        """
        await self._idle.wait()
        await asyncio.sleep(0)  # let the last request's deferred record run
        self._backlog.drain()
        while self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)
        if self.trust is not None:
            await self.trust.settle()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)

    async def handle(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        # A budget's clock (settable in tests) dates the row: the hold counts in its period.
        now = self.budgets.clock() if self.budgets is not None else datetime.now(UTC)
        ex = Exchange(dialect, time.perf_counter(), now, self.ids.next())
        if self.writer.journal is not None:
            ex.seal = self._seal
        self._active += 1
        self._idle.clear()
        try:
            response = await self._serve(request, ex)
            if not response.prepared and response.status < 300 and ex.seal is not None:
                self._seal(ex)  # a body: aiohttp sends it after we return
            return response
        except GatewayError as err:
            ex.status, ex.error = err.status, ex.error or f"gateway:{err.kind}"
            return error_response(dialect, err, ex.provenance(), gave_up=bool(ex.attempts))
        except asyncio.CancelledError:  # the client went away (handler cancellation is on)
            if not ex.delivered:  # else it left with the whole answer
                ex.status = ex.status or CLIENT_CLOSED
                ex.error, ex.incomplete = ex.error or "client_disconnected", True
            raise
        except Exception:
            # Our bug, whatever the input: logged once, the row kept, the client answered
            # in its dialect (a stream under way can only be cut off).
            log.exception("request %s failed inside tollhouse", ex.request_id)
            ex.status, ex.error = 500, "gateway:internal"
            if ex.ttfb is not None:
                raise
            bug = InternalError(
                f"tollhouse failed on this request ({ex.request_id}): a bug in tollhouse, "
                "not in the request; its log has the details"
            )
            return error_response(dialect, bug, ex.provenance())
        finally:
            # After the response is on its way: the ledger row is not on the latency path.
            asyncio.get_running_loop().call_soon(self._record, ex)
            self._active -= 1
            if not self._active:
                self._idle.set()

    def refuse(
        self, request: web.Request, dialect: Dialect, err: GatewayError, headers: dict[str, str]
    ) -> web.Response:
        """A metered request refused before its handler ran (415, 405, 403): answered
        in its dialect, and its row kept with its project, like any refusal."""
        ex = Exchange(dialect, time.perf_counter(), datetime.now(UTC), self.ids.next())
        client_key = dialect.client_key(request.headers, request.query)
        ex.tags = header_tags(request.headers)
        ex.attribution = self.attributor.begin(request.headers, client_key, request.transport)
        ex.status, ex.error = err.status, f"gateway:{err.kind}"
        asyncio.get_running_loop().call_soon(self._record, ex)
        return error_response(dialect, err, {**headers, **ex.provenance()})

    async def _serve(self, request: web.Request, ex: Exchange) -> web.StreamResponse:
        out = await self._outgoing(request, ex)
        candidates = self.router.candidates(out.call.model, ex.dialect.name)
        trust = self.trust
        if trust is not None:
            ex.watch = trust.watch(request.headers, out, request.match_info)
            if ex.watch is not None and ex.watch.inputs:  # steps of whose task?
                if await self._attribute(ex, out) and ex.watch.cache_key is not None:
                    trust.scope_cache(ex.watch, out)
                await trust.check_inputs(ex.watch, ex.attribution)
            if ex.watch is not None and ex.watch.cache_key is not None:
                if await self._attribute(ex, out):  # cache entries are per project: whose?
                    trust.scope_cache(ex.watch, out)
                hit: web.StreamResponse | None = await trust.lookup(ex.watch, ex, candidates[0])
                if hit is not None:
                    await trust.before_reply(ex)
                    return hit
        if self.budgets is not None:
            await self._hold_budget(ex, out, candidates)
        d = Dispatch(out, ex.attempts)
        self._backlog.while_upstream()  # earlier requests' rows, while this one's upstream works
        sent = time.perf_counter()
        answer = await self.dispatcher.dispatch(d, candidates, self.router.is_alias(out.call.model))
        # Whose it is, settled before the client can have the answer and leave (issue 22).
        await self._attribute(ex, out)
        relayed = time.perf_counter()
        ex.route, ex.primary, ex.upstream_s = answer.route, answer.primary, relayed - sent
        if trust is not None and (ex.watch is not None or not answer.primary):
            await self._attribute(ex, out)  # a kept request is re-run for its project (long done)
            trust.observe(ex, out, request.match_info)
        async with answer.response:
            ex.status = answer.response.status
            try:
                response = await self._relay(request, ex, out, answer)
                if ex.watch is not None and not out.call.stream:
                    await trust.before_reply(ex)  # a trust is there when a watch is
                return response
            finally:
                self._settle_lease(ex, answer)
                # A body is read before it is written (ttfb marks the read); a stream is both.
                done = ex.started + ex.ttfb if ex.ttfb and not out.call.stream else None
                ex.upstream_s += (done or time.perf_counter()) - relayed

    async def _hold_budget(self, ex: Exchange, out: Outgoing, candidates: list[Route]) -> None:
        """Reserve the worst-case cost before sending (BudgetExceeded on a hard budget).

        Only when some project has a budget: then a pending process lookup is
        awaited, as the budget can't be checked without knowing whose it is.
        """
        assert self.budgets is not None
        await self._attribute(ex, out)
        assert isinstance(ex.attribution, Attribution)
        project, kind = ex.attribution.project, candidates[0].provider.kind
        if self.budgets.cap_output(project, out.payload, ex.dialect.name, kind):
            out.body = json.dumps(out.payload).encode()  # the cap its hold assumes goes upstream
        ex.budget = await self.budgets.reserve(project, candidates, out.payload, ex.ts, out.body)

    async def _attribute(self, ex: Exchange, out: Outgoing) -> bool:
        """Wait for a pending process lookup; True when that changed the request's project."""
        if isinstance(ex.attribution, Attribution):
            return False
        ex.attribution = await self.attributor.finish(ex.attribution)
        out.project = ex.attribution.project
        return True

    async def _outgoing(self, request: web.Request, ex: Exchange) -> Outgoing:
        client_key = ex.dialect.client_key(request.headers, request.query)
        ex.tags = header_tags(request.headers)
        # Before the body: a request whose body never comes still has its project.
        ex.attribution = self.attributor.begin(request.headers, client_key, request.transport)
        body = await self._read_body(request)
        payload = parse_json_body(body)
        call = ex.call = ex.dialect.call(request.path, request.match_info, payload)
        project = ex.attribution.project if isinstance(ex.attribution, Attribution) else ""
        return Outgoing(
            ex.dialect,
            call,
            payload,
            body,
            request.method,
            request.rel_url.raw_query_string,
            request.headers,
            client_key,
            project or UNATTRIBUTED,
            time.monotonic() + self._deadline_ms(request) / 1000,
        )

    async def _relay(
        self, request: web.Request, ex: Exchange, out: Outgoing, answer: Answer
    ) -> web.StreamResponse:
        headers = ex.provenance()
        if answer.gave_up:
            headers["x-should-retry"] = "false"  # we retried already; SDKs shouldn't multiply it
        if out.call.stream and answer.response.status < 300:
            wants_usage = ex.dialect.asked_for_usage(out.payload)
            return await relay_stream(request, ex, ex.dialect, answer, headers, wants_usage)
        return await relay_body(request, ex, ex.dialect, answer, headers)

    def _settle_lease(self, ex: Exchange, answer: Answer) -> None:
        usage = ex.metered.usage if ex.metered else None
        if usage is not None:
            answer.lease.settle(usage.input_tokens + usage.output_tokens)
        answer.lease.release(None if answer.response.status < 400 else _error_class(ex))

    def _deadline_ms(self, request: web.Request) -> float:
        raw = request.headers.get(DEADLINE_HEADER)
        if raw is None:
            return self.deadline_ms
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not value <= MAX_DEADLINE_MS:  # NaN and Infinity fail too
            raise BadRequest(
                f"{DEADLINE_HEADER} must be a number of milliseconds up to {MAX_DEADLINE_MS:.0f}"
            )
        return max(0.0, value)

    async def _read_body(self, request: web.Request) -> bytes:
        return await read_body(request)  # bounded in size and in time (tollhouse.connections)

    async def passthrough(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        """Unmetered endpoints (model lists, token counting): forwarded as they are."""
        request_id = self.ids.next()
        try:
            provider = self.router.for_dialect(dialect.name)
            if provider is None:
                raise UnknownModel(f"no configured provider speaks {dialect.label}")
            body = await self._read_body(request)
            client_key = dialect.client_key(request.headers, request.query)
            key = self.dispatcher.key_for(provider, client_key, alias=False)
            upstream = await self.upstreams.send(
                request.method,
                provider,
                request.path,
                request.rel_url.raw_query_string,
                request.headers,
                key,
                body,
            )
            async with upstream:
                refuse_redirect(upstream)
                data = await upstream.read()
                headers = downstream_headers(upstream.headers)
                headers[REQUEST_ID_HEADER] = request_id
                return web.Response(body=data, status=upstream.status, headers=headers)
        except GatewayError as err:
            return error_response(dialect, err, {REQUEST_ID_HEADER: request_id})

    def _record(self, ex: Exchange) -> None:
        if ex.watch is not None:  # at once: the agent's next call may ask the gate
            self.trust.finished(ex)
        if ex.budget is None:
            self._backlog.add(ex)
        else:  # a reservation is settled at once, to the real cost (budgets are exact)
            self._record_now(ex)

    def recorded(self) -> None:
        """Every finished request's row queued and its metrics counted (a metrics scrape)."""
        self._backlog.drain()

    def _record_now(self, ex: Exchange) -> None:
        pending = ex.attribution
        if _known(pending):
            self._submit(ex, _settled(pending))
        else:  # the process lookup is still running: finish off the request path
            task = spawn(self._record_later(ex), name="tollhouse-record")
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)

    async def _record_later(self, ex: Exchange) -> None:
        self._submit(ex, await self.attributor.finish(ex.attribution))

    def _seal(self, ex: Exchange) -> None:
        """Journal the row now, before the client can have the whole answer (journal.py).

        A stream may be sealed again as its last events go out: the last line wins.
        """
        pending = ex.attribution
        final = _known(pending)
        who = _settled(pending) if final else Attribution(UNATTRIBUTED, "pending")
        previous = ex.sealed
        ex.sealed = self.writer.seal(self._entry(ex, who))
        ex.sealed_as = self._seal_state(ex) if final else ()
        if previous is not None:
            self.writer.unpin(previous)

    @staticmethod
    def _seal_state(ex: Exchange) -> tuple[Any, ...]:
        m = ex.metered
        return (ex.status, ex.incomplete, ex.error, m and m.complete, m and m.usage)

    def _submit(self, ex: Exchange, who: Attribution) -> None:
        cost = Cost(None, "unpriced")
        sealed = ex.sealed
        entry: LedgerEntry
        try:
            if sealed is not None and ex.sealed_as and ex.sealed_as == self._seal_state(ex):
                entry = sealed.entry  # as journaled: nothing changed since (a client gone...)
            else:
                entry = self._entry(ex, who)
            if sealed is None:
                cost = self.writer.submit(entry)
            else:
                cost = self.writer.submit_sealed(sealed, entry)
        finally:  # a reservation must never outlive its request
            if ex.budget is not None and self.budgets is not None:
                self.budgets.settle(ex.budget, cost.usd)
        if self.metrics is not None:
            self.metrics.observe(entry, cost, ex.upstream_s * 1000)
        log_request(entry, cost)

    def _entry(self, ex: Exchange, who: Attribution) -> LedgerEntry:
        m, route, call = ex.metered, ex.route, ex.call
        provider = route.provider if route else None
        usage = m.usage if m else None
        incomplete = ex.incomplete or bool(
            call and call.stream and ex.status < 300 and not (m and m.complete)
        )
        tried = [a for a in ex.attempts if not a.skipped]
        return LedgerEntry(
            ts=ex.ts,
            request_id=ex.request_id,
            project=who.project,
            attribution=who.how,
            process_name=who.process_name,
            tags={**who.tags, **ex.tags},
            dialect=ex.dialect.name,
            status=ex.status,
            stream=bool(call and call.stream),
            latency_ms=(time.perf_counter() - ex.started) * 1000,
            ttfb_ms=None if ex.ttfb is None else ex.ttfb * 1000,
            provider=provider.name if provider else None,
            pricing_provider=provider.price_provider if provider else None,
            model_requested=call.model if call else None,
            model_served=(m.model if m and m.model else None) or (route.model if route else None),
            incomplete=incomplete,
            usage=usage,
            reported_cost=provider.reported_cost(usage) if provider and usage else None,
            upstream_id=m.upstream_id if m else None,
            error=ex.error or (m.error if m else None),
            trust=None if route is None else ("full" if ex.primary else "degraded"),
            attempts=ex.attempts,
            attempt_count=len(tried),
            queue_wait_ms=sum(a.queue_wait_ms for a in ex.attempts),
            error_class=tried[-1].error_class if tried else None,
        )


def _error_class(ex: Exchange) -> Any:
    from tollhouse.capacity import ErrorClass

    tried = [a for a in ex.attempts if not a.skipped]
    last = tried[-1].error_class if tried else None
    return ErrorClass(last) if last else ErrorClass.CLIENT


def _known(pending: Any) -> bool:
    """Whether the attribution is settled (no process lookup still running)."""
    return pending is None or isinstance(pending, Attribution) or pending.done()


def _settled(pending: Any) -> Attribution:
    if isinstance(pending, Attribution):
        return pending
    found = (
        None if pending is None or pending.cancelled() or pending.exception() else pending.result()
    )
    if found is None:
        return Attribution(UNATTRIBUTED, UNATTRIBUTED)
    return Attribution(found.project, found.how, found.process_name, dict(found.tags))


def error_response(
    dialect: Dialect, err: GatewayError, headers: dict[str, str], *, gave_up: bool = False
) -> web.Response:
    out = dict(headers)
    if err.retry_after is not None:
        out["Retry-After"] = str(max(1, round(err.retry_after)))
    if gave_up:
        out["x-should-retry"] = "false"
    return web.Response(
        body=render_error(dialect, err),
        status=err.status,
        content_type="application/json",
        headers=out,
    )
