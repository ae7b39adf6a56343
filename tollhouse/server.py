"""Running the gateway as a process: event loop, banner, listener, drain.

SIGTERM (or Ctrl-C) drains: the listener closes at once (new connections are
refused, so a load balancer moves on to another instance), requests and
streams in flight get ``server.drain_s`` seconds to finish, then the ledger
is flushed and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable

from aiohttp import web

from tollhouse.app import create_app
from tollhouse.connections import GatewayRunner
from tollhouse.errors import TollhouseError
from tollhouse.ledger.store import describe
from tollhouse.settings import Settings
from tollhouse.wiring import DASHBOARD

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
    asyncio.set_event_loop(loop)
    _raise_fd_limit(settings.server.max_connections)
    main = loop.create_task(_serve(app, host, port, settings, lambda: announce("")))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise TollhouseError(
                f"port {port} on {host} is in use; stop the other server or pass --port"
            ) from None
        raise
    finally:
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        rest = asyncio.all_tasks(loop)  # as web.run_app: nothing left half-run
        for task in rest:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(
    app: web.Application, host: str, port: int, settings: Settings, ready: Callable[[], None]
) -> None:
    """What web.run_app does, with the guarded runner (connections.py) in its place."""
    runner = GatewayRunner(
        app,
        settings.server,
        handle_signals=True,  # SIGTERM/SIGINT raise GracefulExit in run()
        access_log=None,
        # A client that leaves cancels its request, so the upstream call
        # stops too (no tokens burnt for nobody) and the row is written.
        handler_cancellation=True,
        # On SIGTERM the listener closes, then handlers (streams included) get this
        # long before they are cancelled; on_cleanup flushes the ledger.
        shutdown_timeout=settings.server.drain_s,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        ready()
        await asyncio.Event().wait()  # until a signal: GracefulExit
    finally:
        await runner.cleanup()


def _raise_fd_limit(connections: int) -> None:
    """Each connection is a file descriptor: let the soft limit fit the cap (up to the hard)."""
    try:
        import resource
    except ImportError:  # not on this platform: the OS default stays
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256  # the ledger, upstream sockets, the dashboard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
