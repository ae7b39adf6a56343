"""A tiny server that answers every provider path with bytes a test sets, so the
official SDKs can read what translation wrote."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tollhouse.testing import BackgroundServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


REPLY = web.AppKey("reply", Reply)


async def _replay(request: web.Request) -> web.Response:
    await request.read()
    reply = request.app[REPLY]
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)


def replay_app() -> web.Application:
    app = web.Application()
    app[REPLY] = Reply()
    app.router.add_post("/v1/chat/completions", _replay)
    app.router.add_post("/v1/messages", _replay)
    app.router.add_post("/v1beta/models/{target}", _replay)
    return app


def serve(
    server: BackgroundServer, body: bytes, *, stream: bool = False, status: int = 200
) -> None:
    """Answer the next requests with ``body`` (an SSE stream when ``stream``)."""
    assert server.app is not None
    reply = server.app[REPLY]
    reply.status, reply.body = status, body
    reply.content_type = "text/event-stream" if stream else "application/json"
