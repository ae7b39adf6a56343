"""A featureless aiohttp passthrough: the floor any Python gateway on this stack can reach.

Same stack as tollhouse (aiohttp server, one shared aiohttp ClientSession,
uvloop), none of the features: no parsing, no metering, no ledger. The
overhead benchmark runs it as its "bare" arm so tollhouse's cost can be read
as a ratio against it.

    python bench/bare_passthrough.py --port 4200 --upstream http://127.0.0.1:4100/openai

forwards ``POST /v1/chat/completions`` to
``http://127.0.0.1:4100/openai/v1/chat/completions`` and streams the answer back.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import uvloop
from aiohttp import ClientSession, ClientTimeout, StreamReader, TCPConnector, web

# Headers worth carrying each way; hop-by-hop ones (Connection, Transfer-Encoding,
# Content-Length...) are the server's and the client's own business on each hop.
REQUEST_HEADERS = ("Content-Type", "Accept", "Accept-Encoding", "Authorization")
RESPONSE_HEADERS = ("Content-Type", "Content-Encoding", "Cache-Control")

SESSION = web.AppKey("session", ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def forward(request: web.Request) -> web.StreamResponse:
    """Send the request upstream unchanged and copy the response back."""
    headers = {k: request.headers[k] for k in REQUEST_HEADERS if k in request.headers}
    # Else aiohttp asks for gzip on the client's behalf, and bodies pass through undecoded.
    headers.setdefault("Accept-Encoding", "identity")
    url = request.app[UPSTREAM] + request.rel_url.raw_path_qs
    body = await request.read()
    session = request.app[SESSION]
    async with session.request(request.method, url, data=body, headers=headers) as upstream:
        copied = {k: upstream.headers[k] for k in RESPONSE_HEADERS if k in upstream.headers}
        if upstream.content_length is not None:
            # A sized body is read whole and sent in one write, as any gateway that meters
            # it must: the cheapest way through aiohttp, so the floor stays honest.
            return web.Response(status=upstream.status, body=await upstream.read(), headers=copied)
        return await relay(request, upstream.status, copied, upstream.content)


async def relay(
    request: web.Request, status: int, headers: dict[str, str], content: StreamReader
) -> web.StreamResponse:
    """Stream an unsized (chunked, SSE) body chunk by chunk as it arrives."""
    response = web.StreamResponse(status=status, headers=headers)
    try:
        await response.prepare(request)
        async for chunk in content.iter_any():
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:  # the client left (wrk stops mid-request at the end)
        pass
    return response


async def session_context(app: web.Application) -> AsyncIterator[None]:
    """One keep-alive session for the process, closed on shutdown."""
    connector = TCPConnector(limit=0, ttl_dns_cache=None)
    timeout = ClientTimeout(total=None, sock_connect=10)
    # auto_decompress=False: bytes pass through exactly as the upstream sent them.
    async with ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        app[SESSION] = session
        yield


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(session_context)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Featureless aiohttp passthrough (bench arm).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument(
        "--upstream", required=True, help="base URL, e.g. http://127.0.0.1:4100/openai"
    )
    args = parser.parse_args()
    web.run_app(
        make_app(args.upstream),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
