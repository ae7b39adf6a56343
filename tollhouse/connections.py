"""How long and how many client connections may hold the gateway.

A peer that sends half its headers, or a body one byte a minute, holds a
socket and a task; thousands of them starve everyone (slowloris). The limits,
all from ``[server]``:

- ``client_header_timeout_s``: from the accept (or, on a kept-alive connection,
  the next request's first byte) to the end of the headers; then it is closed.
  A deadline, not an idle timer: trickling a byte at a time does not extend it.
- ``client_body_timeout_s``: the longest pause between two reads of a body;
  then 408 (:func:`read_body`).
- ``keepalive_timeout_s``: an idle keep-alive connection is closed.
- ``max_connections``: at the cap, the oldest connection that has never sent a
  whole request is cut to make room; when every one has, the new one is.

aiohttp has the keep-alive timer but no header timer and no cap, so
:class:`GatewayRunner` serves the app with a :class:`GuardedServer`, whose
connections are :class:`GuardedRequestHandler` s. They read a few of aiohttp's
private attributes (``_waiter``, ``_messages``, ``_request_count``,
``_request_in_progress``, ``Server._kwargs``): aiohttp is pinned, and
tests/test_connections.py fails if an upgrade moves them.

>>> runner = GatewayRunner(app, settings.server, handle_signals=True)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from tollhouse.errors import BadRequest, BodyTooLarge, RequestTimeout
from tollhouse.settings import ServerSettings

log = logging.getLogger("tollhouse")

CONNECTIONS = web.AppKey("connections", ServerSettings)
LINGER_S = 5.0  # how long unread body bytes are drained after an early answer (nginx: 5 s)


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with a deadline for each request's headers."""

    __slots__ = ("_header_count", "_header_timer")

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # nginx too: the first request's headers are due from the accept

    def data_received(self, data: bytes) -> None:
        served = self._request_count
        super().data_received(data)
        if self._request_count != served:  # a whole request's headers are in
            self._disarm()
            manager = self._manager
            if served == 0 and isinstance(manager, GuardedServer):
                manager.proven(self)
        elif data and self._header_timer is None and self._waiting():
            self._arm()  # the first bytes of the next request: its headers are due

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting(self) -> bool:
        """Between requests: the loop waits for a message, none is queued."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self._messages

    def _arm(self) -> None:
        manager = self._manager
        if not isinstance(manager, GuardedServer):
            return
        self._header_count = self._request_count
        due_in = manager.limits.client_header_timeout_s
        self._header_timer = self._loop.call_later(due_in, self._due)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _due(self) -> None:
        self._header_timer = None
        if self._request_count == self._header_count and not self._request_in_progress:
            log.debug("closing a connection whose headers did not arrive in time")
            self.force_close()


class GuardedServer(web.Server):
    """aiohttp's connection factory, with a cap on connections open at once."""

    def __init__(self, *args: Any, limits: ServerSettings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.cut = 0  # connections closed to stay under the cap (for tests and metrics)
        self._open: set[RequestHandler] = set()
        # Connections that never sent a whole request, oldest first: cut first at the cap.
        self._unproven: dict[RequestHandler, None] = {}

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._open.add(handler)
        if len(self._open) > self.limits.max_connections:
            oldest = next(iter(self._unproven), handler)  # none unproven: refuse this one
            self._unproven.pop(oldest, None)
            self._open.discard(oldest)
            self.cut += 1
            oldest.force_close()
        if handler in self._open:
            self._unproven[handler] = None

    def proven(self, handler: RequestHandler) -> None:
        self._unproven.pop(handler, None)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._open.discard(handler)
        self._unproven.pop(handler, None)
        super().connection_lost(handler, exc)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose server is a :class:`GuardedServer` with ``limits``."""

    def __init__(self, app: web.Application, limits: ServerSettings, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", limits.keepalive_timeout_s)
        kwargs.setdefault("lingering_time", min(LINGER_S, limits.client_body_timeout_s))
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            limits=self.limits,
            **plain._kwargs,
        )


def make_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The gateway's guarded runner when ``app`` carries limits, else aiohttp's own."""
    limits = app.get(CONNECTIONS)
    if limits is None:
        return web.AppRunner(app, **kwargs)
    return GatewayRunner(app, limits, **kwargs)


async def read_body(request: web.Request) -> bytes:
    """The whole request body, within ``max_body_mb`` and ``client_body_timeout_s``.

    The timeout is between two reads, as nginx's: a large upload on a slow
    link is fine, a stalled one is not. Chunked bodies are cut at the limit
    as they arrive, never buffered past it.
    """
    limits = request.app.get(CONNECTIONS) or ServerSettings()
    limit = int(limits.max_body_mb * 1024 * 1024)
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(too_large(limit))
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(limits.client_body_timeout_s):
                chunk = await request.content.readany()
        except RequestPayloadError as exc:  # e.g. not the Content-Encoding it says
            raise BadRequest(f"the request body can't be read: {exc}".strip()) from None
        except TimeoutError:
            raise RequestTimeout(
                f"the request body stalled for {limits.client_body_timeout_s:g} s; "
                "send the whole body without pausing (server.client_body_timeout_s)"
            ) from None
        if not chunk:
            return bytes(body)
        if len(body) + len(chunk) > limit:
            raise BodyTooLarge(too_large(limit))
        body += chunk


def too_large(limit: int) -> str:
    return (
        f"the request body is larger than {limit / (1024 * 1024):g} MiB; "
        "raise server.max_body_mb in the config if that is intended"
    )
