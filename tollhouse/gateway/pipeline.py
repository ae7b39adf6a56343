"""One metered call, end to end: the straight path through the stages.

Per request: parse just enough of the body (model, stream), attribute it,
let the hooks (trust) decide whether to follow or answer it, let the
dispatcher get it answered (capacity, retries, fallback), relay the answer as
it arrives while the provider dialect's meter watches the bytes, and hand the
exchange to the recorder, which makes its one ledger row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from datetime import UTC, datetime

from aiohttp import web

from tollhouse.attribution.chain import UNATTRIBUTED, Attribution, Attributor, header_tags
from tollhouse.budgets.gate import BudgetGate
from tollhouse.capacity import ErrorClass
from tollhouse.connections import read_body
from tollhouse.errors import BadRequest, GatewayError, InternalError, UnknownModel
from tollhouse.fusion.plan import FusionPlan
from tollhouse.fusion.runner import Fusion
from tollhouse.gateway.dispatch import Dispatch, Dispatcher
from tollhouse.gateway.models import (
    REQUEST_ID_HEADER,
    Answer,
    CachedAnswer,
    Exchange,
    Outgoing,
    RequestHooks,
    Route,
)
from tollhouse.gateway.record import Recorder
from tollhouse.gateway.relay import relay_body, relay_stream
from tollhouse.gateway.respond import error_response
from tollhouse.gateway.routing import Router
from tollhouse.gateway.upstream import Upstreams, downstream_headers, refuse_redirect
from tollhouse.ids import RequestIds
from tollhouse.ingress import Dialect, parse_json_body
from tollhouse.ingress.headers import check_own_headers
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.usage import Metered
from tollhouse.metrics import GatewayMetrics
from tollhouse.telemetry import Telemetry

__all__ = ["REQUEST_ID_HEADER", "Exchange", "Gateway", "error_response"]

log = logging.getLogger("tollhouse.gateway")

DEADLINE_HEADER = "X-Tollhouse-Deadline-Ms"
MAX_DEADLINE_MS = 86_400_000.0  # a day: past it, a deadline is a mistake (or inf)
CLIENT_CLOSED = 499  # nginx's status for "client closed the request"; ledger only


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
        hooks: RequestHooks | None = None,
        budgets: BudgetGate | None = None,
        metrics: GatewayMetrics | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.router = router
        self.attributor = attributor
        self.writer = writer
        self.upstreams = upstreams
        self.dispatcher = dispatcher
        self.max_body = max_body
        self.deadline_ms = deadline_ms
        self.hooks = hooks
        self.budgets = budgets
        self.metrics = metrics
        self.recorder = Recorder(
            writer, attributor, budgets=budgets, metrics=metrics, hooks=hooks, telemetry=telemetry
        )
        self.fusion = Fusion(router, dispatcher)
        self.ids = RequestIds()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

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
        await self.recorder.settle()
        if self.hooks is not None:
            await self.hooks.settle()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)

    async def handle(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        # A budget's clock (settable in tests) dates the row: the hold counts in its period.
        now = self.budgets.clock() if self.budgets is not None else datetime.now(UTC)
        ex = Exchange(dialect, time.perf_counter(), now, self.ids.next())
        self.recorder.sealer(ex)
        self._active += 1
        self._idle.clear()
        try:
            response = await self._serve(request, ex)
            if not response.prepared and response.status < 300 and ex.seal is not None:
                ex.seal(ex)  # a body: aiohttp sends it after we return
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
            asyncio.get_running_loop().call_soon(self.recorder.record, ex)
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
        asyncio.get_running_loop().call_soon(self.recorder.record, ex)
        return error_response(dialect, err, {**headers, **ex.provenance()})

    async def _serve(self, request: web.Request, ex: Exchange) -> web.StreamResponse:
        out = await self._outgoing(request, ex)
        fused = self.fusion.plan(out)  # a panel and a judge as one model (tollhouse.fusion)
        candidates = (
            fused.writer if fused else self.router.candidates(out.call.model, ex.dialect.name)
        )
        hooks = None if fused else self.hooks
        if hooks is not None:
            ex.watch = hooks.watch(request.headers, out, request.match_info)
            if ex.watch is not None and ex.watch.needs_project:  # its steps, its cache: whose?
                await self._attribute(ex, out)
                lookup = await hooks.before_dispatch(ex.watch, out, ex.request_id)
                ex.cache = lookup.outcome
                if lookup.answer is not None:
                    return await self._cached(ex, lookup.answer, candidates[0])
        models = self.dispatcher.models
        if models is not None and models.per_project:  # whose lists apply?
            await self._attribute(ex, out)
        if self.budgets is not None:
            await self._hold_budget(ex, out, candidates, fused)
        d = Dispatch(out, ex.attempts)
        self.recorder.while_upstream()  # earlier requests' rows, while this one's upstream works
        sent = time.perf_counter()
        if fused is not None:
            answer = await self.fusion.run(fused, out, ex)
        else:
            alias = self.router.is_alias(out.call.model)
            answer = await self.dispatcher.dispatch(d, candidates, alias)
        relayed = time.perf_counter()
        ex.route, ex.primary, ex.upstream_s = answer.route, answer.primary, relayed - sent
        if hooks is not None and (ex.watch is not None or not answer.primary):
            await self._attribute(ex, out)  # a kept request is re-run for its project (long done)
            ex.watch = hooks.after_dispatch(ex.watch, out, answer.primary, request.match_info)
            if ex.watch is not None:
                ex.capture = []  # the hook reads what the client got
        async with answer.response:
            ex.status = answer.response.status
            try:
                response = await self._relay(request, ex, out, answer)
                if hooks is not None and ex.watch is not None and not out.call.stream:
                    await hooks.before_reply(ex.watch, ex)
                return response
            finally:
                self._settle_lease(ex, answer)
                # A body is read before it is written (ttfb marks the read); a stream is both.
                done = ex.started + ex.ttfb if ex.ttfb and not out.call.stream else None
                ex.upstream_s += (done or time.perf_counter()) - relayed

    async def _cached(self, ex: Exchange, cached: CachedAnswer, route: Route) -> web.Response:
        """Serve an answer a hook already had (a cache hit): no upstream, no attempt."""
        ex.route, ex.primary, ex.status = route, False, 200
        ex.metered = Metered(model=cached.served_by.partition("/")[2], complete=True)
        ex.tags["cache"] = "hit"
        ex.cache, ex.cached_by = "hit", cached.served_by
        ex.capture = [cached.body]
        mime, _, charset = cached.content_type.partition(";")
        response = web.Response(
            body=cached.body,
            status=200,
            content_type=mime.strip(),
            charset=charset.partition("charset=")[2].strip() or None,
            headers=ex.provenance(),
        )
        if self.hooks is not None and ex.watch is not None:
            await self.hooks.before_reply(ex.watch, ex)
        return response

    async def _hold_budget(
        self, ex: Exchange, out: Outgoing, candidates: list[Route], fused: FusionPlan | None
    ) -> None:
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
        if fused is not None:  # the whole fan-out, up front: every member, the judge, the writer
            ex.budget = await self.budgets.reserve_fan_out(
                project, fused.stages(), out.payload, ex.ts
            )
            return
        ex.budget = await self.budgets.reserve(project, candidates, out.payload, ex.ts, out.body)

    async def _attribute(self, ex: Exchange, out: Outgoing) -> bool:
        """Wait for a pending process lookup; True when that changed the request's project."""
        if isinstance(ex.attribution, Attribution):
            return False
        assert ex.attribution is not None  # begun in _outgoing, before the body
        ex.attribution = await self.attributor.finish(ex.attribution)
        out.project = ex.attribution.project
        return True

    async def _outgoing(self, request: web.Request, ex: Exchange) -> Outgoing:
        client_key = ex.dialect.client_key(request.headers, request.query)
        ex.tags = header_tags(request.headers)
        # Before the body: a request whose body never comes still has its project.
        ex.attribution = self.attributor.begin(request.headers, client_key, request.transport)
        ex.warning = check_own_headers(request.headers)  # a near-typo is a 400 (with its row)
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

    def recorded(self) -> None:
        """Every finished request's row queued and its metrics counted (a metrics scrape)."""
        self.recorder.drain()


def _error_class(ex: Exchange) -> ErrorClass:
    tried = [a for a in ex.attempts if not a.skipped]
    last = tried[-1].error_class if tried else None
    return ErrorClass(last) if last else ErrorClass.CLIENT
