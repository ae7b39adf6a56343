"""The composition root: the gateway application, built by a factory from settings.

Every part is made here and handed to the parts that use it; nothing else
builds one. The request path itself is :mod:`tollhouse.gateway`.

>>> app = create_app(load_settings(path))
>>> web.run_app(app, host=settings.server.host, port=settings.server.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import web

from tollhouse.access_tokens import ensure_token
from tollhouse.attribution.chain import Attributor
from tollhouse.attribution.process import ProcessAttributor
from tollhouse.budgets.gate import BudgetGate
from tollhouse.capacity import Capacity, Limits, RetryPolicy
from tollhouse.capacity import http as capacity_http
from tollhouse.capacity.policy import FileBlocks, ModelPolicy, ProjectRules
from tollhouse.cluster import RedisTrustStore, SharedState
from tollhouse.connections import CONNECTIONS
from tollhouse.errors import (
    ConfigError,
)
from tollhouse.fusion.plan import Panel
from tollhouse.gateway.dispatch import Dispatcher
from tollhouse.gateway.middleware import browser_guard, cors_headers, routing_errors
from tollhouse.gateway.pipeline import Gateway
from tollhouse.gateway.routes import CAPACITY, GATEWAY, METRICS, add_routes
from tollhouse.gateway.routing import Router
from tollhouse.gateway.upstream import Upstreams
from tollhouse.hostguard import (
    LOCAL_NAMES,
    BrowserGuard,
    parse_origins,
)
from tollhouse.ledger.postgres import is_postgres
from tollhouse.ledger.store import Location
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metrics import GatewayMetrics
from tollhouse.pricing import Pricer
from tollhouse.pricing.discount import discounts
from tollhouse.providers import build_providers
from tollhouse.settings import LimitSettings, Settings, tollhouse_home
from tollhouse.tasks import cancel_all, spawn
from tollhouse.telemetry import build_telemetry
from tollhouse.trust import http as trust_http
from tollhouse.trust.service import build_trust
from tollhouse.wiring import (
    DASHBOARD,
    attach_dashboard,
    load_budgets,
    observe_gateway,
)

__all__ = ["BUDGETS", "CAPACITY", "GATEWAY", "METRICS", "STATE", "WRITER", "create_app"]

log = logging.getLogger("tollhouse")

WRITER = web.AppKey("writer", LedgerWriter)
BUDGETS = web.AppKey("budgets", BudgetGate)
STATE = web.AppKey("state", SharedState)


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
        client_max_size=max_body, middlewares=[browser_guard(guard), routing_errors]
    )
    app[CONNECTIONS] = settings.server  # header/body timeouts, the connection cap
    if guard.origins:  # CORS headers go on before a stream's headers are sent
        app.on_response_prepare.append(cors_headers(guard))
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
    models = build_model_policy(settings, shared)
    telemetry = build_telemetry(settings.telemetry)  # a missing extra is a ConfigError now
    capacity_http.add_routes(
        app,
        capacity,
        {p.name for p in settings.providers},
        settings.trust.resolved_operator_token_file(),
        models,
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
        router = Router(
            providers,
            {name: a.chain for name, a in settings.models.items() if not a.fused},
            {
                name: Panel(a.panel, a.judge, a.writer, a.member_timeout_s)
                for name, a in settings.models.items()
                if a.fused
            },
        )
        attributor = Attributor(settings.project_for_key(), ProcessAttributor())
        cap = settings.capacity
        upstreams = Upstreams(session)
        dispatcher = Dispatcher(
            upstreams,
            capacity,
            capacity.policy,
            max_attempts=cap.max_attempts,
            gone_for=cap.model_gone_cooldown_s,
            is_virtual_key=attributor.is_virtual_key,
            models=models,
        )
        await models.refresh()  # the blocks in force (Redis or blocks.json) before serving
        if shared is not None:  # another instance's block holds here within a second
            spawn(models.follow(), name="tollhouse-blocks")
        gateway = app[GATEWAY] = Gateway(
            router,
            attributor,
            writer,
            upstreams,
            dispatcher,
            max_body=max_body,
            deadline_ms=cap.deadline_ms,
            hooks=trust,
            budgets=budgets,
            metrics=app[METRICS],
            telemetry=telemetry,
        )
        app[trust_http.ATTRIBUTOR] = attributor
        trust.start(router, dispatcher, gateway.ids, cap.deadline_ms / 1000, budgets)
        observe_gateway(app[METRICS], gateway, capacity, budgets, ledger_path)
        if shared is not None:
            app[METRICS].scraped(shared.redis.gauges)
            await shared.check()  # warns when a Redis restart would erase the trust state
        if dashboard:
            await attach_dashboard(app, settings, ledger_path, capacity, budgets, guard, models)

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
        if telemetry is not None:
            await asyncio.get_running_loop().run_in_executor(None, telemetry.close)

    app.on_startup.append(startup)
    app.on_shutdown.append(draining)
    app.on_cleanup.append(cleanup)
    add_routes(app)
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


def build_model_policy(settings: Settings, shared: SharedState | None) -> ModelPolicy:
    """The kill switch (config blocks, runtime blocks in Redis or blocks.json) and the
    projects' model lists."""
    store = shared.blocks if shared is not None else FileBlocks(tollhouse_home() / "blocks.json")
    return ModelPolicy(
        config_blocks=settings.capacity.blocked_models,
        projects={
            name: ProjectRules(p.allow_models, p.deny_models)
            for name, p in settings.projects.items()
        },
        store=store,
    )


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


def _allowed_hosts(settings: Settings) -> frozenset[str]:
    extra = {h.lower() for h in settings.server.allowed_hosts}
    if settings.server.host not in ("0.0.0.0", "::", ""):
        extra.add(settings.server.host.lower())
    return LOCAL_NAMES | extra
