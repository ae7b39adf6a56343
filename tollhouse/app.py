"""The gateway application, built by a factory from validated settings.

>>> app = create_app(load_settings(path))
>>> web.run_app(app, host=settings.server.host, port=settings.server.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from tollhouse import __version__
from tollhouse.access_tokens import ensure_token
from tollhouse.attribution.chain import Attributor
from tollhouse.attribution.process import ProcessAttributor
from tollhouse.budgets import BudgetGate
from tollhouse.capacity import Capacity, Limits, RetryPolicy
from tollhouse.capacity import http as capacity_http
from tollhouse.cluster import RedisTrustStore, SharedState
from tollhouse.connections import CONNECTIONS
from tollhouse.errors import (
    ConfigError,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NoSuchEndpoint,
    UnsupportedMediaType,
)
from tollhouse.gateway.dispatch import Dispatcher
from tollhouse.gateway.pipeline import REQUEST_ID_HEADER, Gateway, error_response
from tollhouse.gateway.routing import Router
from tollhouse.gateway.upstream import Upstreams
from tollhouse.hostguard import (
    LOCAL_NAMES,
    PASS,
    BrowserGuard,
    body_refusal,
    decide,
    parse_origins,
    preflight_headers,
)
from tollhouse.ingress import DIALECTS, Dialect
from tollhouse.ledger.postgres import is_postgres
from tollhouse.ledger.store import Location
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metrics import GatewayMetrics
from tollhouse.pricing import Pricer
from tollhouse.pricing.discount import discounts
from tollhouse.providers import build_providers
from tollhouse.settings import LimitSettings, Settings, tollhouse_home
from tollhouse.tasks import cancel_all
from tollhouse.trust import http as trust_http
from tollhouse.trust.service import build_trust
from tollhouse.wiring import (
    DASHBOARD,
    attach_dashboard,
    load_budgets,
    metrics_handler,
    observe_gateway,
)

log = logging.getLogger("tollhouse")

GATEWAY = web.AppKey("gateway", Gateway)
CAPACITY = web.AppKey("capacity", Capacity)
WRITER = web.AppKey("writer", LedgerWriter)
METRICS = web.AppKey("metrics", GatewayMetrics)
BUDGETS = web.AppKey("budgets", BudgetGate)
STATE = web.AppKey("state", SharedState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CORS_ORIGIN = web.RequestKey("cors_origin", str)
# Routes whose body is not JSON (multipart uploads, say): exempt from the 415 check.
# Every other POST/PUT/PATCH route of the gateway parses a JSON body.
RAW_BODY_ROUTES: frozenset[str] = frozenset()


def create_app(
    settings: Settings, *, ledger_path: Location | None = None, dashboard: bool = False
) -> web.Application:
    """Build the gateway app; the ledger and upstream session open on startup.

    ``dashboard``: also serve the dashboard on its own port (``tollhouse serve`` does).
    """
    max_body = int(settings.server.max_body_mb * 1024 * 1024)
    allowed = _allowed_hosts(settings)
    guard = BrowserGuard(allowed, parse_origins(settings.server.allowed_origins))
    app = web.Application(
        client_max_size=max_body, middlewares=[browser_guard(guard), _routing_errors]
    )
    app[CONNECTIONS] = settings.server  # header/body timeouts, the connection cap
    if guard.origins:  # CORS headers go on before a stream's headers are sent
        app.on_response_prepare.append(_cors_headers(guard))
    ledger_path = ledger_path or settings.ledger.location()
    pricer = Pricer(settings.prices, discounts(settings.commitments))
    writer = LedgerWriter(
        ledger_path,
        pricer,
        batch_size=settings.ledger.batch_size,
        journal=settings.ledger.journal_path(ledger_path),
    )
    app[WRITER] = writer
    app[METRICS] = GatewayMetrics()
    budget_gate = BudgetGate.from_settings(settings, pricer)
    if budget_gate is not None:  # none configured: the request path skips budgets
        app[BUDGETS] = budget_gate
        if is_postgres(ledger_path):  # several instances may share it: so do budgets
            budget_gate.share(ledger_path, ttl=_hold_ttl(settings))
    shared = SharedState(settings.state) if settings.state.url else None
    if shared is not None:
        app[STATE] = shared
    capacity = app[CAPACITY] = build_capacity(settings, shared)  # config errors surface now
    capacity_http.add_routes(
        app,
        capacity,
        {p.name for p in settings.providers},
        settings.trust.resolved_operator_token_file(),
    )
    trust = app[trust_http.TRUST] = build_trust(
        settings.trust, writer, _shared_trust(shared, settings, writer) if shared else None
    )
    app[trust_http.LEDGER_PATH] = writer.path
    operator_file = None  # trust.approval = "open": approving takes no token
    if settings.trust.approval == "token":
        operator_file = settings.trust.resolved_operator_token_file()

    async def startup(app: web.Application) -> None:
        _private_home()
        writer.start()
        # Made as the gateway starts, not when an app is built (tollhouse approve reads it).
        app[trust_http.OPERATOR_TOKEN] = ensure_token(operator_file) if operator_file else None
        budgets = app.get(BUDGETS)
        if budgets is not None:
            load_budgets(budgets, ledger_path)  # this day's and month's spend so far
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.server.connect_timeout_s,
            sock_read=settings.server.read_timeout_s,
        )
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=True, trust_env=False
        )
        providers = build_providers(settings.providers)
        router = Router(providers, {name: a.chain for name, a in settings.models.items()})
        attributor = Attributor(settings.project_for_key(), ProcessAttributor())
        cap = settings.capacity
        dispatcher = Dispatcher(
            Upstreams(session),
            capacity,
            capacity.policy,
            max_attempts=cap.max_attempts,
            gone_for=cap.model_gone_cooldown_s,
            is_virtual_key=attributor.is_virtual_key,
        )
        gateway = app[GATEWAY] = Gateway(
            router,
            attributor,
            writer,
            dispatcher.upstreams,
            dispatcher,
            max_body=max_body,
            deadline_ms=cap.deadline_ms,
            trust=trust,
            budgets=budgets,
            metrics=app[METRICS],
        )
        app[trust_http.ATTRIBUTOR] = attributor
        trust.start(router, dispatcher, gateway.ids, cap.deadline_ms / 1000, budgets)
        observe_gateway(app[METRICS], gateway, capacity, budgets, ledger_path)
        if shared is not None:
            app[METRICS].scraped(shared.redis.gauges)
            await shared.check()  # warns when a Redis restart would erase the trust state
        if dashboard:
            await attach_dashboard(app, settings, ledger_path, capacity, budgets, guard)

    async def draining(app: web.Application) -> None:
        log.info("draining: %d requests in flight", app[GATEWAY].in_flight)
        dropped = trust.stop_replays()  # sampled checks, not records: never worth a late stop
        if dropped:
            log.info("draining: %d fallback divergence replays dropped", dropped)

    async def cleanup(app: web.Application) -> None:
        gateway = app[GATEWAY]
        # Rows whose process lookup is still running, trust writes: in before the close.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.settle(), max(settings.server.drain_s, 5.0))
        if DASHBOARD in app:
            await app[DASHBOARD].close()
        await gateway.upstreams.session.close()
        await app[CAPACITY].close()
        await cancel_all()
        if shared is not None:
            await shared.close()
        if gateway.attributor.process is not None:
            gateway.attributor.process.close()
        if BUDGETS in app and app[BUDGETS].shared is not None:
            app[BUDGETS].shared.close()  # the last settles, committed
        writer.close()

    app.on_startup.append(startup)
    app.on_shutdown.append(draining)
    app.on_cleanup.append(cleanup)
    _add_routes(app)
    return app


def _private_home() -> None:
    """$TOLLHOUSE_HOME holds keys' tokens, the ledger and the CA: ours alone (0700),
    also when an older version or a loose umask made it readable by others."""
    home = tollhouse_home()
    with contextlib.suppress(OSError):
        if home.is_dir() and home.stat().st_mode & 0o077:
            home.chmod(0o700)
            log.info("made %s private (0700)", home)


def _shared_trust(shared: SharedState, settings: Settings, writer: LedgerWriter) -> RedisTrustStore:
    t = settings.trust
    return shared.trust_store(
        writer, retention_s=t.task_retention_s, key_retention_s=t.idempotency_retention_s
    )


def _hold_ttl(settings: Settings) -> float:
    """A shared budget hold outlives any request: the wait, then the slowest answer."""
    s = settings.server
    return settings.capacity.deadline_ms / 1000 + s.connect_timeout_s + s.read_timeout_s * 2


def build_capacity(settings: Settings, shared: SharedState | None = None) -> Capacity:
    """The capacity gate, configured with every provider's (and model's) quota."""
    cap = settings.capacity
    capacity = Capacity(
        shared=shared.limiter if shared is not None else None,
        policy=RetryPolicy(
            base=cap.retry_base_s,
            cap=cap.retry_cap_s,
            max_attempts=cap.max_attempts,
            budget_ratio=cap.retry_budget,
        ),
        default_cooldown=cap.default_cooldown_s,
        breaker_failures=cap.breaker_failures,
        breaker_reset=cap.breaker_reset_s,
        provider_models=cap.provider_models_failing,
        weights={name: p.weight for name, p in settings.projects.items()},
        max_queue=cap.max_queue,
    )
    for p in settings.providers:
        per_model = {m: _limits(lim) for m, lim in p.limits.items()}
        capacity.configure(p.name, _limits(p.key_limits()), per_model)
    return capacity


def _limits(s: LimitSettings) -> Limits:
    """Bursts default small: a burst B leaves rpm - B + 1 a minute sustained, and the
    quota is only worth having if agents can use nearly all of it (issue 3: >= 95 %)."""
    burst = s.burst or (max(1, s.rpm // 50) if s.rpm else None)
    token_burst = s.token_burst or (max(1, s.tpm // 10) if s.tpm else None)
    try:
        return Limits(s.rpm, s.tpm, s.max_in_flight, burst=burst, token_burst=token_burst)
    except ValueError as exc:
        raise ConfigError(f"limits: {exc}") from None


def _add_routes(app: web.Application) -> None:
    """Every route sits behind :func:`browser_guard` (Host, Origin, JSON bodies)."""
    for dialect in DIALECTS.values():
        for path in dialect.routes:
            app.router.add_post(path, _metered(dialect))
    app.router.add_get("/v1/models", _models())
    app.router.add_post("/v1/messages/count_tokens", _passthrough(DIALECTS["anthropic"]))
    app.router.add_get("/tollhouse/health", _health)
    app.router.add_get("/tollhouse/v1/capacity", _capacity)
    app.router.add_get("/metrics", _metrics)
    trust_http.add_routes(app, lambda r: None)  # the middleware guards them


_OPENAI = DIALECTS["openai-chat"]


def browser_guard(guard: BrowserGuard) -> Middleware:
    """One middleware for every method and path, unknown ones included: the Host
    check, the browser check (CORS for allowed origins), and JSON-only bodies."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        decision = decide(request.method, request.headers, guard)
        if decision is not PASS:
            if decision.action == "refuse":
                return _refused(request, Forbidden(decision.reason), decision.why)
            if decision.action == "preflight":
                asked = request.headers.get("Access-Control-Request-Headers", "")
                return web.Response(status=204, headers=preflight_headers(decision.origin, asked))
            request[CORS_ORIGIN] = decision.origin
        why = body_refusal(request.method, request.headers)
        if why is not None and _takes_json(request):
            return _refused(request, UnsupportedMediaType(why), "content-type")
        return await handler(request)

    return middleware


def _takes_json(request: web.Request) -> bool:
    """A known route that parses a JSON body (unknown paths and methods: 404/405 instead)."""
    match = request.match_info
    if match.http_exception is not None:
        return False
    return match.route.resource is None or match.route.resource.canonical not in RAW_BODY_ROUTES


def _cors_headers(guard: BrowserGuard) -> Callable[[web.Request, web.StreamResponse], Any]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.get(CORS_ORIGIN)
        if origin is not None:
            response.headers.update(guard.cors_headers(origin))

    return add


def _refused(
    request: web.Request,
    err: GatewayError,
    why: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The refusal in the path's dialect; on a metered path also a ledger row, with
    the project its headers or key name (a refused request is still someone's).

    Not for a browser refused (403): a web page is no one's client, and must not be
    able to fill the ledger. The guard's refusals (``why``: the check that refused)
    are counted in ``tollhouse_refused_requests_total`` too.
    """
    metrics = request.app.get(METRICS)
    if why is not None and metrics is not None:
        metrics.refused.add((why,))
    gateway = request.app.get(GATEWAY)
    dialect = _metered_dialect(request.path)
    if gateway is not None and dialect is not None and not isinstance(err, Forbidden):
        return gateway.refuse(request, dialect, err, headers or {})
    return error_response(
        _dialect_of(request.path), err, {**(headers or {}), REQUEST_ID_HEADER: "-"}
    )


def _metered_dialect(path: str) -> Dialect | None:
    """The dialect whose metered endpoint ``path`` is (whatever the method), or None."""
    dialect = _dialect_of(path)
    if dialect is DIALECTS["gemini"]:
        return dialect if path.endswith(("generateContent", "GenerateContent")) else None
    return DIALECTS.get(_METERED_PATHS.get(path, ""))


_METERED_PATHS = {
    "/v1/chat/completions": "openai-chat",
    "/v1/responses": "openai-responses",
    "/v1/messages": "anthropic",
}


@web.middleware
async def _routing_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A wrong path or method is answered like any gateway error: JSON, in the
    dialect of the path, saying what to use instead (aiohttp's own is plain text)."""
    err: GatewayError
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.path}; use {allowed}")
        headers = {"Allow": allowed}
    except web.HTTPNotFound:
        fix = (
            "the dashboard has its own port: `tollhouse dashboard` prints its address"
            if request.path.startswith("/tollhouse/ui")
            else "point the SDK's base URL at the gateway (OpenAI: /v1, Anthropic and Gemini: "
            "the root) or see /tollhouse/v1/... in the README"
        )
        err = NoSuchEndpoint(f"tollhouse has no endpoint {request.method} {request.path}; {fix}")
        headers = {}
    return _refused(request, err, headers=headers)


def _dialect_of(path: str) -> Dialect:
    if path.startswith("/v1/messages"):
        return DIALECTS["anthropic"]
    if path.startswith(("/v1beta/", "/v1alpha/", "/v1/models/")):
        return DIALECTS["gemini"]
    return _OPENAI


def _metered(dialect: Dialect) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await request.app[GATEWAY].handle(request, dialect)

    return handler


def _passthrough(dialect: Dialect) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await request.app[GATEWAY].passthrough(request, dialect)

    return handler


def _models() -> Handler:
    """``GET /v1/models``: Anthropic's list when the client speaks Anthropic, else OpenAI's."""
    by_dialect = {name: _passthrough(DIALECTS[name]) for name in ("openai-chat", "anthropic")}

    async def handler(request: web.Request) -> web.StreamResponse:
        name = "anthropic" if "anthropic-version" in request.headers else "openai-chat"
        return await by_dialect[name](request)

    return handler


async def _health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok", "version": __version__})


async def _capacity(request: web.Request) -> web.StreamResponse:
    """Live capacity per upstream: in flight, queue depth, waits, 429s, breaker, cooldowns."""
    return web.json_response(request.app[CAPACITY].stats())


async def _metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus exposition; scrape-time gauges read the ledger, so off the loop."""
    request.app[GATEWAY].recorded()  # the requests just answered count, too
    return await metrics_handler(request.app[METRICS])


def _allowed_hosts(settings: Settings) -> frozenset[str]:
    extra = {h.lower() for h in settings.server.allowed_hosts}
    if settings.server.host not in ("0.0.0.0", "::", ""):
        extra.add(settings.server.host.lower())
    return LOCAL_NAMES | extra
