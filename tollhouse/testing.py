"""Run aiohttp apps on ephemeral loopback ports in a background thread.

Used by the test-suite, the demo and the bench; users' own tests can use it
too (with :mod:`tollhouse.simulator`) to run a fake provider next to their code.

>>> with BackgroundServer(lambda: make_app()) as server:
...     requests.get(server.url + "/v1/models")
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from tollhouse.connections import make_runner

T = TypeVar("T")

AppFactory = Callable[[], web.Application | Awaitable[web.Application]]


class BackgroundServer:
    """An aiohttp application served from its own thread and event loop."""

    def __init__(
        self,
        factory: AppFactory,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        handler_cancellation: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._factory = factory
        self._handler_cancellation = handler_cancellation
        self._ssl_context = ssl_context
        self.host = host
        self.port = port
        self.app: web.Application | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        made = self._factory()
        self.app = made if isinstance(made, web.Application) else await made
        self._runner = make_runner(
            self.app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=self._handler_cancellation,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
            self._runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    """``tollhouse serve`` in a child process: for drain and crash tests.

    >>> with GatewayProcess(config_path) as gw:
    ...     openai.OpenAI(base_url=gw.url + "/v1", api_key="x")
    """

    def __init__(
        self, config: Any, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.config = config
        self.env = env
        self.args = args  # more `tollhouse serve` options, e.g. ("-v",)
        self.port = free_port()
        self.proc: Any = None
        self.log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_within: float = 60) -> GatewayProcess:
        import os
        import subprocess
        import sys
        import tempfile
        import time
        import urllib.request

        cmd = [sys.executable, "-m", "tollhouse", "serve", "--config", str(self.config)]
        # A file, not a pipe: a child that logs a lot must never block on a full pipe.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in __exit__
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port), *self.args],
            env={**os.environ, **(self.env or {})},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + ready_within
        while True:  # readiness: poll the health endpoint, it answers once listening
            if self.proc.poll() is not None:
                raise RuntimeError(f"tollhouse serve exited: {self.stderr()}")
            try:
                urllib.request.urlopen(self.url + "/tollhouse/health", timeout=5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stderr(self) -> str:
        """What the child logged so far."""
        self.log.seek(0)
        return bytes(self.log.read()).decode(errors="replace")

    def kill(self) -> int:
        """SIGKILL, like a crash: no cleanup runs."""
        self.proc.kill()
        return int(self.proc.wait(30))

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM: drain and exit; the exit code."""
        self.proc.terminate()
        return int(self.proc.wait(timeout))

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self.log is not None:
            self.log.close()
