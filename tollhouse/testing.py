"""Run aiohttp apps on ephemeral loopback ports in a background thread.

Used by the test-suite, the demo and the bench; users' own tests can use it
too (with :mod:`tollhouse.simulator`) to run a fake provider next to their code.

>>> with BackgroundServer(lambda: make_app()) as server:
...     requests.get(server.url + "/v1/models")
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from tollhouse.connections import make_runner
from tollhouse.providers import Provider

if TYPE_CHECKING:
    from tollhouse.gateway.dispatch import Dispatcher

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
        """Clean up the app and end the loop; a second call does nothing."""
        if self.loop.is_closed():
            return
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


# -- a provider without sockets --------------------------------------------------------------


@dataclass(slots=True)
class SentRequest:
    """What :class:`MockTransport` was asked to send: as it would go on the wire."""

    method: str
    provider: str
    url: str  # built by the real edge code (upstream_url): path and query encoded
    headers: dict[str, str]  # after the real header filter, auth added
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class MockResponse:
    """A provider's answer for :class:`MockTransport`: a status, headers and a body
    (JSON, bytes, or chunks a stream delivers one by one)."""

    def __init__(
        self,
        status: int = 200,
        json_body: object = None,
        *,
        body: bytes = b"",
        chunks: list[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        self.status = status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(headers or {}))
        self._chunks = chunks if chunks is not None else [body]
        self.released = False

    @property
    def content_length(self) -> int | None:
        return sum(map(len, self._chunks))

    @property
    def content(self) -> _Chunks:
        return _Chunks(self._chunks)

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    def release(self) -> None:
        self.released = True

    async def __aenter__(self) -> MockResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


MockHandler = Callable[[SentRequest], MockResponse]


class MockTransport:
    """The upstream seam without sockets, in the manner of httpx's ``MockTransport``:
    ``handler`` answers each request (or raises, e.g. ``UpstreamUnavailable``), and
    every request is kept in :attr:`sent`. Dispatch, preparation and failover run
    against it in microseconds (tests/gateway/test_dispatch.py).

    >>> transport = MockTransport(lambda sent: MockResponse(200, {"ok": True}))
    >>> dispatcher = Dispatcher(transport, capacity, policy, ...)
    """

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler
        self.sent: list[SentRequest] = []

    async def send(
        self,
        method: str,
        provider: Provider,
        path: str,
        query: str,
        incoming: Mapping[str, str],
        key: str,
        body: bytes,
    ) -> MockResponse:
        from tollhouse.gateway.upstream import upstream_headers, upstream_url

        headers = upstream_headers(incoming, provider.auth_headers(key))
        sent = SentRequest(
            method, provider.name, upstream_url(provider, path, query), dict(headers), body
        )
        self.sent.append(sent)
        return self.handler(sent)


def mock_dispatcher(
    handler: MockHandler,
    *,
    max_attempts: int = 3,
    virtual_keys: frozenset[str] = frozenset(),
) -> tuple[Dispatcher, MockTransport]:
    """A :class:`Dispatcher` over a :class:`MockTransport`, with a fresh capacity gate
    whose backoff is a millisecond (the failover logic, not the waiting, is tested)."""
    from tollhouse.capacity import Capacity, RetryPolicy
    from tollhouse.gateway.dispatch import Dispatcher

    transport = MockTransport(handler)
    policy = RetryPolicy(base=0.001, cap=0.001, max_attempts=max_attempts, budget_ratio=1.0)
    capacity = Capacity(policy=policy, default_cooldown=0.001)
    dispatcher = Dispatcher(
        transport,
        capacity,
        policy,
        max_attempts=max_attempts,
        gone_for=60.0,
        is_virtual_key=lambda key: key in virtual_keys,
    )
    return dispatcher, transport
