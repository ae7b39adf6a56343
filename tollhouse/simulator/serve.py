"""The async shell around one generation request: faults, latency, body or stream, bill.

The bill line is written before the response's last byte leaves: before the
JSON body of a plain response, before the terminal frame of a stream, before
the connection is cut or the in-band error is sent.

Quota (:mod:`.quota`): a request is checked against its (flavor, model)
quota as soon as it is parsed, before latency and faults; an over-quota one
gets the dialect's 429 at once and bills zero like an error fault. Every
admitted request spends quota, whatever fault it meets next.

Faults: an error fault answers in the dialect's error shape and bills zero
(``cost_usd: "0"``, ``complete: false``). ``cut=N`` sends at most N frames
(never the terminal one) and closes the connection; a plain response with
``cut`` is generated and billed in full, then the connection drops before
any byte. ``stream_error=N`` sends at most N frames, then the dialect's
in-band error, then ends the stream cleanly. Both bill what was generated so
far (input, any reasoning once a frame went out, answer tokens sent) with
``complete: false``. ``stream_error`` on a plain request is ignored.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from aiohttp import web

from .billing import BillWriter, Tally, bill_line
from .dialects import BadRequest, Dialect, Frame, StreamBreak
from .errors import ERROR_STYLES, ErrorContext, ErrorStyle
from .faults import Fault, FaultBook, FaultSpecError, parse_fault
from .flavors import Flavor
from .judge import is_judge
from .oddusage import spoil, spoil_frame
from .planner import Overrides, PlanContext, Reply, SimRequest, plan
from .prompt import PromptCache
from .quota import Clock, QuotaLimiter, Verdict
from .settings import SimulatorSettings
from .wire import dumps, request_id


@dataclass(slots=True)
class SimulatorState:
    """Everything the simulator remembers between requests."""

    settings: SimulatorSettings
    cache: PromptCache
    quota: QuotaLimiter
    faults: FaultBook = field(default_factory=FaultBook)
    bills: BillWriter = field(init=False)

    def __post_init__(self) -> None:
        self.bills = BillWriter(self.settings.bill_path)

    @classmethod
    def build(cls, settings: SimulatorSettings, clock: Clock | None = None) -> SimulatorState:
        quota = QuotaLimiter(
            rpm=settings.rpm,
            tpm=settings.tpm,
            burst_s=settings.quota_burst_s,
            models=settings.quota_models,
            clock=clock or time.monotonic,
        )
        return cls(settings, PromptCache(settings.min_cache_tokens), quota)

    def reset(self) -> None:
        """Forget programmed faults and cached prompts, refill quotas, zero the stats;
        empty the bill file."""
        self.faults.clear()
        self.cache.clear()
        self.quota.reset()
        self.bills.truncate()


STATE: web.AppKey[SimulatorState] = web.AppKey("tollhouse_simulator_state", SimulatorState)


def auth_style(request: web.Request) -> str | None:
    """Which credential style the client used (never the credential)."""
    headers = request.headers
    if headers.get("authorization", "").lower().startswith("bearer "):
        return "bearer"
    for name in ("x-api-key", "x-goog-api-key"):
        if name in headers:
            return name
    return "query" if "key" in request.query else None


@dataclass(slots=True)
class Call:
    """One generation request being served, and how to bill it."""

    state: SimulatorState
    flavor: Flavor
    dialect: Dialect
    request: web.Request
    request_id: str = field(default_factory=request_id)
    when: datetime = field(default_factory=lambda: datetime.now(UTC))
    model: str = ""
    stream: bool = False
    quota: Verdict | None = None
    """The quota's verdict once the request was checked against it."""

    @property
    def style(self) -> ErrorStyle:
        return ERROR_STYLES[self.dialect.error_style]

    def bill(
        self,
        *,
        status: int,
        complete: bool,
        tally: Tally,
        cost: Decimal | None,
        reply_id: str | None,
        error: str | None = None,
    ) -> None:
        headers = self.request.headers
        line = bill_line(
            tally=tally,
            cost=cost,
            ts=self.when.isoformat(),
            flavor=self.flavor.name,
            dialect=self.dialect.name,
            id=reply_id,
            request_id=self.request_id,
            path=self.request.path,
            model=self.model,
            stream=self.stream,
            status=status,
            complete=complete,
            error=error,
            auth=auth_style(self.request),
            saw_tollhouse_headers=any(h.lower().startswith("x-tollhouse-") for h in headers),
        )
        self.state.bills.write(line)

    def bill_reply(self, reply: Reply, error: str | None = None) -> None:
        """The full bill; ``error`` marks a reply the client never received whole."""
        self.bill(
            status=200,
            complete=error is None,
            tally=reply.usage,
            cost=reply.cost,
            reply_id=reply.id,
            error=error,
        )

    def error(
        self,
        kind: str,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        quota: Verdict | None = None,
    ) -> web.Response:
        retry = self.state.settings.default_retry_after_s if retry_after is None else retry_after
        ctx = ErrorContext(self.model, retry, self.request_id, self.when, message, quota)
        rendered = self.style.render(kind, ctx)
        self.bill(
            status=rendered.status,
            complete=False,
            tally=Tally(),
            cost=Decimal(0),
            reply_id=None,
            error=kind,
        )
        return web.Response(
            status=rendered.status,
            text=dumps(rendered.body),
            content_type="application/json",
            headers=rendered.headers,
        )


def _overrides(request: web.Request) -> Overrides:
    def header_int(name: str) -> int | None:
        raw = request.headers.get(name)
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise BadRequest(f"{name} must be a non-negative integer")
        return int(raw)

    return Overrides(header_int("x-sim-output-tokens"), header_int("x-sim-reasoning-tokens"))


async def _parse(call: Call, hints: dict[str, str]) -> SimRequest:
    raw = await call.request.read()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    req = call.dialect.parse(body, hints)
    call.model, call.stream = req.model, req.stream
    return replace(req, judge=True) if is_judge(raw) else req


def _header_fault(request: web.Request) -> Fault | None:
    header = request.headers.get("x-sim-fault")
    return None if header is None else parse_fault(header)


def _fault(call: Call, header: Fault | None) -> Fault:
    programmed = call.state.faults.take(call.model, call.flavor.name)
    return programmed if header is None else header.over(programmed)


async def _pause(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


async def serve_generation(
    request: web.Request, flavor: Flavor, dialect: Dialect, hints: dict[str, str]
) -> web.StreamResponse:
    """Answer one generation request in ``dialect`` as ``flavor`` would."""
    state = request.app[STATE]
    call = Call(state, flavor, dialect, request)
    try:
        req = await _parse(call, hints)
        header_fault = _header_fault(request)
        overrides = _overrides(request)
    except (BadRequest, FaultSpecError) as exc:
        return call.error("invalid_request", message=str(exc))
    call.quota = state.quota.check(flavor.name, req.model, _quota_tokens(req, state.settings))
    if not call.quota.admitted:  # before faults: a rejected request uses up no programmed fault
        return call.error("rate_limit", retry_after=call.quota.retry_after_s, quota=call.quota)
    fault = _fault(call, header_fault)
    await _pause(state.settings.latency_ms + fault.latency_ms)
    if req.model in state.settings.gone_models:
        return call.error("not_found")
    if fault.error is not None:
        return call.error(fault.error, retry_after=fault.retry_after)
    reply = plan(
        req, _context(state, flavor, dialect), overrides, reply_id=dialect.new_id(), when=call.when
    )
    if req.stream:
        return await _stream(call, reply, fault)
    if fault.pad_mb:
        return await _padded(call, reply, fault.pad_mb)
    return _respond(call, reply, fault)


def _quota_tokens(req: SimRequest, settings: SimulatorSettings) -> int:
    """What a request spends of a tokens-per-minute quota: prompt plus max-tokens."""
    wanted = settings.default_output_tokens if req.max_output is None else req.max_output
    return req.prompt.tokens + wanted


def _context(state: SimulatorState, flavor: Flavor, dialect: Dialect) -> PlanContext:
    settings = state.settings
    return PlanContext(
        flavor=flavor,
        cache=state.cache,
        explicit_cache=dialect.explicit_cache,
        default_output_tokens=settings.default_output_tokens,
        chunk_tokens=settings.chunk_tokens,
        reasoning_multiplier=settings.reasoning_multiplier,
    )


def _respond(call: Call, reply: Reply, fault: Fault) -> web.Response:
    answer = call.dialect.body(reply)
    body = dumps(answer if fault.usage is None else spoil(answer, fault.usage))
    call.bill_reply(reply, error=None if fault.cut is None else "cut")
    headers = call.style.ok_headers(call.request_id, call.when, call.quota)
    if fault.cut is not None:
        _drop(call.request)
    return web.Response(text=body, content_type="application/json", headers=headers)


PAD_MARK = "\x00pad\x00"
PAD_CHUNK = b"x" * 65536


async def _padded(call: Call, reply: Reply, mib: float) -> web.StreamResponse:
    """The answer with ``mib`` MiB of filler in its text, made and sent a chunk at a time."""
    body = dumps(call.dialect.body(replace(reply, pieces=(PAD_MARK, *reply.pieces)))).encode()
    head, _, tail = body.partition(json.dumps(PAD_MARK).strip('"').encode())
    pad = int(mib * 1024 * 1024)
    call.bill_reply(reply)  # the filler is not billed: usage stays the plan's
    headers = call.style.ok_headers(call.request_id, call.when, call.quota)
    response = web.StreamResponse(headers=headers)
    response.content_type = "application/json"
    response.content_length = len(head) + pad + len(tail)
    await response.prepare(call.request)
    await response.write(head)
    for start in range(0, pad, len(PAD_CHUNK)):
        await response.write(PAD_CHUNK[: pad - start])
    await response.write(tail)
    await response.write_eof()
    return response


def _drop(request: web.Request) -> None:
    """Close the connection abruptly: the client sees a broken response."""
    if request.transport is not None:
        request.transport.close()


async def _stream(call: Call, reply: Reply, fault: Fault) -> web.StreamResponse:
    frames = call.dialect.frames(reply)
    if fault.usage is not None:
        frames = [replace(f, data=spoil_frame(f.data, fault.usage)) for f in frames]
    stop = _stop_at(fault, len(frames))
    headers = call.style.ok_headers(call.request_id, call.when, call.quota)
    response = web.StreamResponse(headers={**headers, "cache-control": "no-cache"})
    response.content_type = call.dialect.stream_content_type(reply.request)
    await response.prepare(call.request)
    sent = 0
    try:
        for frame in frames[:stop]:
            await _pause(call.state.settings.stream_chunk_delay_ms if sent else 0)
            if sent == len(frames) - 1:
                call.bill_reply(reply)
            await response.write(frame.data)
            sent += 1
    except ConnectionError:
        if sent < len(frames) - 1:  # else the full bill is already written
            _bill_partial(call, reply, frames, sent, "client_closed")
        return response
    if fault.hold is not None and stop < len(frames):
        await _hold(call, reply, frames, stop)
        return response
    try:
        if stop < len(frames):
            await _break(call, reply, fault, frames, stop, response)
        elif fault.linger_ms:
            await _pause(fault.linger_ms)
        if not _closing(call.request):
            await response.write_eof()
    except ConnectionError:
        pass  # the client left after its last frame; the bill is already written
    return response


async def _break(
    call: Call,
    reply: Reply,
    fault: Fault,
    frames: list[Frame],
    sent: int,
    response: web.StreamResponse,
) -> None:
    why = "cut" if fault.cut is not None else "stream_error"
    at = _bill_partial(call, reply, frames, sent, why)
    if fault.cut is not None:
        _drop(call.request)
    else:
        await response.write(call.dialect.error_frame(reply, at))


async def _hold(call: Call, reply: Reply, frames: list[Frame], sent: int) -> None:
    """Stall mid-stream until the client leaves (a minute at most), then bill what was sent."""
    for _ in range(6000):
        if _closing(call.request):
            break
        await asyncio.sleep(0.01)
    _bill_partial(call, reply, frames, sent, "client_closed")
    _drop(call.request)


def _closing(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _stop_at(fault: Fault, count: int) -> int:
    """How many frames to send: all, or fewer than all when the stream must break."""
    breaks = (fault.cut, fault.stream_error, fault.hold)
    limits = [min(n, count - 1) for n in breaks if n is not None]
    return min([count, *limits])


def _bill_partial(
    call: Call, reply: Reply, frames: list[Frame], sent: int, why: str
) -> StreamBreak:
    text_tokens = frames[sent - 1].text_tokens if sent else 0
    usage, cost = reply.partial(text_tokens, started=sent > 0)
    call.bill(status=200, complete=False, tally=usage, cost=cost, reply_id=reply.id, error=why)
    return StreamBreak(sent, usage, cost)
