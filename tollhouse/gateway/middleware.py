"""The two middlewares every request passes: the browser guard (Host, Origin,
JSON bodies) and the error mapping of wrong paths and methods. Both answer in
the dialect of the path, and keep a row for a metered path's refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from tollhouse.errors import (
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NoSuchEndpoint,
    UnsupportedMediaType,
)
from tollhouse.gateway.models import REQUEST_ID_HEADER
from tollhouse.gateway.respond import error_response
from tollhouse.gateway.routes import GATEWAY, METRICS, Handler
from tollhouse.hostguard import PASS, BrowserGuard, body_refusal, decide, preflight_headers
from tollhouse.ingress.registry import dialect_of_path, metered_dialect

CORS_ORIGIN = web.RequestKey("cors_origin", str)
# Routes whose body is not JSON (multipart uploads, say): exempt from the 415 check.
# Every other POST/PUT/PATCH route of the gateway parses a JSON body.
RAW_BODY_ROUTES: frozenset[str] = frozenset()


def browser_guard(guard: BrowserGuard) -> Middleware:
    """One middleware for every method and path, unknown ones included: the Host
    check, the browser check (CORS for allowed origins), and JSON-only bodies."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        decision = decide(request.method, request.headers, guard)
        if decision is not PASS:
            if decision.action == "refuse":
                return _refused(request, Forbidden(decision.reason), decision.why)
            if decision.action == "preflight":
                asked = request.headers.get("Access-Control-Request-Headers", "")
                return web.Response(status=204, headers=preflight_headers(decision.origin, asked))
            request[CORS_ORIGIN] = decision.origin
        why = body_refusal(request.method, request.headers)
        if why is not None and _takes_json(request):
            return _refused(request, UnsupportedMediaType(why), "content-type")
        return await handler(request)

    return middleware


def _takes_json(request: web.Request) -> bool:
    """A known route that parses a JSON body (unknown paths and methods: 404/405 instead)."""
    match = request.match_info
    if match.http_exception is not None:
        return False
    return match.route.resource is None or match.route.resource.canonical not in RAW_BODY_ROUTES


def cors_headers(
    guard: BrowserGuard,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.get(CORS_ORIGIN)
        if origin is not None:
            response.headers.update(guard.cors_headers(origin))

    return add


def _refused(
    request: web.Request,
    err: GatewayError,
    why: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The refusal in the path's dialect; on a metered path also a ledger row, with
    the project its headers or key name (a refused request is still someone's).

    Not for a browser refused (403): a web page is no one's client, and must not be
    able to fill the ledger. The guard's refusals (``why``: the check that refused)
    are counted in ``tollhouse_refused_requests_total`` too.
    """
    metrics = request.app.get(METRICS)
    if why is not None and metrics is not None:
        metrics.refused.add((why,))
    gateway = request.app.get(GATEWAY)
    dialect = metered_dialect(request.path)
    if gateway is not None and dialect is not None and not isinstance(err, Forbidden):
        return gateway.refuse(request, dialect, err, headers or {})
    return error_response(
        dialect_of_path(request.path), err, {**(headers or {}), REQUEST_ID_HEADER: "-"}
    )


@web.middleware
async def routing_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A wrong path or method is answered like any gateway error: JSON, in the
    dialect of the path, saying what to use instead (aiohttp's own is plain text)."""
    err: GatewayError
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.path}; use {allowed}")
        headers = {"Allow": allowed}
    except web.HTTPNotFound:
        fix = (
            "the dashboard has its own port: `tollhouse dashboard` prints its address"
            if request.path.startswith("/tollhouse/ui")
            else "point the SDK's base URL at the gateway (OpenAI: /v1, Anthropic and Gemini: "
            "the root) or see /tollhouse/v1/... in the README"
        )
        err = NoSuchEndpoint(f"tollhouse has no endpoint {request.method} {request.path}; {fix}")
        headers = {}
    return _refused(request, err, headers=headers)
