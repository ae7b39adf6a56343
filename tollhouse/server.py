"""Running the gateway as a process: event loop, banner, listener, drain.

SIGTERM (or Ctrl-C) drains: the listener closes at once (new connections are
refused, so a load balancer moves on to another instance), requests and
streams in flight get ``server.drain_s`` seconds to finish, then the ledger
is flushed and the process exits 0.
"""

from __future__ import annotations

import asyncio
import errno
import logging

from aiohttp import web

from tollhouse.app import create_app
from tollhouse.errors import TollhouseError
from tollhouse.ledger.store import describe
from tollhouse.observe import DASHBOARD
from tollhouse.settings import Settings

log = logging.getLogger("tollhouse")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available: measured faster on the request path (bench/)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    host = host or settings.server.host
    port = port if port is not None else settings.server.port
    if host not in LOOPBACK:
        log.warning("binding %s: tollhouse is reachable from the network and uses your keys", host)
    app = create_app(settings, dashboard=settings.dashboard.enabled)
    ledger = describe(settings.ledger.location())
    banner = (
        f"tollhouse on http://{host}:{port}  (config: {settings.source}, ledger: {ledger})\n"
        f"  OPENAI_BASE_URL=http://127.0.0.1:{port}/v1\n"
        f"  ANTHROPIC_BASE_URL=http://127.0.0.1:{port}\n"
        f"  Gemini: http_options=HttpOptions(base_url='http://127.0.0.1:{port}')"
    )

    def announce(_: str) -> None:
        dashboard = app.get(DASHBOARD)
        extra = (
            f"\n  Dashboard: http://127.0.0.1:{dashboard.port}/tollhouse/ui/"
            "  (`tollhouse dashboard --open` opens it with its token)"
            if dashboard is not None
            else ""
        )
        print(banner + extra, flush=True)

    loop = new_event_loop()
    try:
        web.run_app(
            app,
            host=host,
            port=port,
            print=announce,
            access_log=None,
            loop=loop,
            # A client that leaves cancels its request, so the upstream call
            # stops too (no tokens burnt for nobody) and the row is written.
            handler_cancellation=True,
            # On SIGTERM aiohttp stops listening, then waits this long for handlers
            # (streams included) before cancelling them; on_cleanup flushes the ledger.
            shutdown_timeout=settings.server.drain_s,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise TollhouseError(
                f"port {port} on {host} is in use; stop the other server or pass --port"
            ) from None
        raise
