"""Running the interceptor: mitmproxy embedded as a library, with tollhouse's addon.

>>> asyncio.run(serve_intercept(settings, ready=print))   # until SIGINT/SIGTERM
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import options
from mitmproxy.tools.dump import DumpMaster

from tollhouse.attribution.process import ProcessAttributor
from tollhouse.errors import ConfigError, TollhouseError
from tollhouse.intercept.addon import MeterAddon
from tollhouse.intercept.ca import CAFiles, ensure_ca
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing import Pricer
from tollhouse.settings import Settings

UPSTREAM_ROOTS = "upstream-roots.pem"


class PortInUse(TollhouseError):
    """Something already listens where the interceptor should."""


def check_port_free(host: str, port: int) -> None:
    """Say which port is taken and how to pick another (mitmproxy's own advice is for its CLI)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                f"{host}:{port} is already in use (is `tollhouse intercept` running already?); "
                "pass --port or set [intercept] port"
            ) from None


def mitmproxy_options(settings: Settings, ca: CAFiles, port: int | None) -> dict[str, Any]:
    """mitmproxy's options for tollhouse: loopback, our CA, upstream certificates verified."""
    cfg = settings.intercept
    options: dict[str, Any] = {
        "listen_host": cfg.host,
        "listen_port": cfg.port if port is None else port,
        "confdir": str(ca.directory),
        "onboarding": False,  # no mitm.it pages: nothing is served by the proxy itself
        "ssl_insecure": False,
    }
    if cfg.upstream_ca_file:
        options["ssl_verify_upstream_trusted_ca"] = str(_upstream_roots(ca, cfg.upstream_ca_file))
    return options


def _upstream_roots(ca: CAFiles, extra: str) -> Path:
    # mitmproxy trusts certifi's roots for upstreams, or the one file it is given instead:
    # give it both, so an extra CA adds to the roots rather than replacing them.
    import certifi

    path = Path(extra).expanduser()
    if not path.is_file():
        raise ConfigError(f"intercept.upstream_ca_file: {path} is not a file")
    roots = ca.directory / UPSTREAM_ROOTS
    roots.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + path.read_bytes())
    return roots


async def serve_intercept(
    settings: Settings,
    *,
    port: int | None = None,
    ledger_path: Path | None = None,
    ready: Callable[[list[tuple[str, int]]], None] | None = None,
) -> None:
    """Run the intercepting proxy until SIGINT or SIGTERM; every row is committed on the way out."""
    check_port_free(settings.intercept.host, settings.intercept.port if port is None else port)
    ca = ensure_ca(settings.intercept.resolved_ca_dir())
    writer = LedgerWriter(
        ledger_path or settings.ledger.location(),
        Pricer(settings.prices),
        batch_size=settings.ledger.batch_size,
    ).start()
    process = ProcessAttributor()
    master = DumpMaster(options.Options(), with_termlog=False, with_dumper=False)
    addon = MeterAddon(settings.intercept, writer, process, ready=ready)
    master.addons.add(addon)  # type: ignore[no-untyped-call]
    master.options.update(**mitmproxy_options(settings, ca, port))  # type: ignore[no-untyped-call]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    loop.set_exception_handler(_quiet_cancellation)
    try:
        await master.run()
    finally:
        await addon.settle()
        process.close()
        writer.close()


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Shutting down with clients connected cancels their handlers; on Python 3.11 asyncio's
    # stream callback then logs each CancelledError as an error with a traceback.
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def quiet_mitmproxy(verbose: bool) -> None:
    """mitmproxy logs every connection at INFO; keep that for --verbose."""
    logging.getLogger("mitmproxy").setLevel(logging.DEBUG if verbose else logging.WARNING)
