"""The gateway's endpoints: the metered ones (one handler; the route says the
dialect), the forwarded ones, and tollhouse's own health, capacity and metrics.

The app keys the handlers read are declared here, where they are used;
:mod:`tollhouse.app` fills them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from tollhouse import __version__
from tollhouse.capacity import Capacity
from tollhouse.gateway.pipeline import Gateway
from tollhouse.ingress import DIALECTS, Dialect
from tollhouse.ingress.registry import dialect_of_path
from tollhouse.metrics import GatewayMetrics
from tollhouse.trust import http as trust_http
from tollhouse.wiring import metrics_handler

GATEWAY = web.AppKey("gateway", Gateway)
CAPACITY = web.AppKey("capacity", Capacity)
METRICS = web.AppKey("metrics", GatewayMetrics)

# Each metered route's resource, with the dialect that owns it (filled by add_routes).
ROUTE_DIALECTS = web.AppKey("route_dialects", dict[AbstractResource, Dialect])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    """Every route; all sit behind the browser guard (middleware.py)."""
    owners: dict[AbstractResource, Dialect] = {}
    for dialect in DIALECTS.values():
        for path in dialect.routes:
            resource = app.router.add_post(path, metered).resource
            assert resource is not None  # a route added to a router has one
            owners[resource] = dialect
    app[ROUTE_DIALECTS] = owners
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/messages/count_tokens", passthrough)
    app.router.add_get("/tollhouse/health", health)
    app.router.add_get("/tollhouse/v1/capacity", capacity)
    app.router.add_get("/metrics", metrics)
    trust_http.add_routes(app, lambda r: None)  # the middleware guards them


def route_dialect(request: web.Request) -> Dialect:
    """The dialect of the route ``request`` matched (a metered or forwarded one)."""
    resource = request.match_info.route.resource
    owner = request.app[ROUTE_DIALECTS].get(resource) if resource is not None else None
    if owner is not None:
        return owner
    if request.path == "/v1/models":  # one path, two dialects: the client's headers tell
        return DIALECTS["anthropic" if "anthropic-version" in request.headers else "openai-chat"]
    return dialect_of_path(request.path)


async def metered(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request, route_dialect(request))


async def passthrough(request: web.Request) -> web.StreamResponse:
    """Unmetered endpoints (token counting): forwarded as they are."""
    return await request.app[GATEWAY].passthrough(request, route_dialect(request))


async def models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: Anthropic's list when the client speaks Anthropic, else OpenAI's."""
    return await request.app[GATEWAY].passthrough(request, route_dialect(request))


async def health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok", "version": __version__})


async def capacity(request: web.Request) -> web.StreamResponse:
    """Live capacity per upstream: in flight, queue depth, waits, 429s, breaker, cooldowns."""
    return web.json_response(request.app[CAPACITY].stats())


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus exposition; scrape-time gauges read the ledger, so off the loop."""
    request.app[GATEWAY].recorded()  # the requests just answered count, too
    return await metrics_handler(request.app[METRICS])
