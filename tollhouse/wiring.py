"""Wiring that lets people see the gateway: metrics' scrape-time gauges, the dashboard.

Kept out of :mod:`tollhouse.app` so the factory stays a list of parts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from tollhouse.access_tokens import ensure_token
from tollhouse.budgets.gate import BudgetGate
from tollhouse.capacity import Capacity
from tollhouse.capacity.policy import ModelPolicy
from tollhouse.dashboard.server import Dashboard, Sources
from tollhouse.hostguard import BrowserGuard
from tollhouse.ledger.store import Location, connect
from tollhouse.metrics import GatewayMetrics
from tollhouse.metrics.gateway import (
    budget_gauges,
    capacity_gauges,
    ledger_counters,
    trust_gauges,
)
from tollhouse.settings import Settings
from tollhouse.trust.metrics import trust_metrics

log = logging.getLogger("tollhouse")

DASHBOARD = web.AppKey("dashboard", Dashboard)
TRUST_WINDOW = timedelta(hours=24)
T = TypeVar("T")


def load_budgets(budgets: BudgetGate, ledger_path: Location) -> None:
    with closing(connect(ledger_path, readonly=True)) as conn:
        budgets.load(conn)


def observe_gateway(
    metrics: GatewayMetrics,
    gateway: Any,
    capacity: Capacity,
    budgets: BudgetGate | None,
    ledger_path: Location,
) -> None:
    """Scrape-time series: in flight, capacity, budgets, and the ledger's trust numbers.

    Called on the event loop. The scrape renders in a thread, but capacity and budget
    state belong to the loop (its dicts grow and shrink as requests come), so they are
    read there.
    """
    metrics.in_flight(lambda: float(gateway.in_flight))
    writer = gateway.writer
    metrics.scraped(lambda: ledger_counters(writer.written, writer.quarantined))
    capacity_stats = _on_loop(lambda: capacity.stats())
    metrics.scraped(lambda: capacity_gauges(capacity_stats()))
    if budgets is not None:
        budget_status = _on_loop(lambda: budgets.status())
        metrics.scraped(lambda: budget_gauges(budget_status()))
    trust = _LedgerTrust(ledger_path)
    metrics.scraped(lambda: trust_gauges(trust()))


def _on_loop(read: Callable[[], T]) -> Callable[[], T]:
    """``read``, callable from another thread, run on the current event loop."""
    loop = asyncio.get_running_loop()

    async def call() -> T:
        return read()

    return lambda: asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=10)


class _LedgerTrust:
    """The trust numbers of the last 24 hours, recomputed at most every ``ttl`` seconds:
    they scan the ledger, and Prometheus may scrape every few seconds."""

    def __init__(self, ledger_path: Location, ttl: float = 30.0) -> None:
        self.ledger_path, self.ttl = ledger_path, ttl
        self._at, self._found = -math.inf, dict[str, Any]()

    def __call__(self) -> dict[str, Any]:
        if time.monotonic() - self._at >= self.ttl:
            with closing(connect(self.ledger_path, readonly=True)) as conn:
                conn.row_factory = sqlite3.Row
                self._found = trust_metrics(conn, since=datetime.now(UTC) - TRUST_WINDOW)
            self._at = time.monotonic()
        return self._found


async def metrics_handler(metrics: GatewayMetrics) -> web.Response:
    # Rendering runs the scrape-time collectors (one reads the ledger): off the loop.
    body = await asyncio.get_running_loop().run_in_executor(None, metrics.render)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def attach_dashboard(
    app: web.Application,
    settings: Settings,
    ledger_path: Location,
    capacity: Capacity,
    budgets: BudgetGate | None,
    guard: BrowserGuard,
    models: ModelPolicy | None = None,
) -> None:
    """Start the dashboard on its own port; its token file is created on first use."""
    conf = settings.dashboard
    token = ensure_token(conf.resolved_token_file())
    sources = Sources(
        ledger_path,
        capacity,
        budgets,
        settings.commitments,
        models=models,
        interest=settings.interest,
    )
    # The gateway's hosts and origins, its own address too; a link from another site may
    # open its pages (read-only; the SameSite=Strict cookie doesn't go along).
    hosts = guard.hosts | {conf.host.lower()}
    dashboard = Dashboard(sources, token, BrowserGuard(hosts, guard.origins, navigations=True))
    try:
        await dashboard.start(conf.host, conf.port, settings.server)
    except OSError as exc:  # the gateway matters more than its dashboard: keep serving
        await dashboard.close()
        log.warning(
            "dashboard not started on %s:%d (%s); set [dashboard] port to a free one",
            conf.host,
            conf.port,
            exc.strerror or exc,
        )
        return
    app[DASHBOARD] = dashboard
