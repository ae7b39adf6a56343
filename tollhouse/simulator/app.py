"""The simulator's aiohttp application: routes per flavor, model lists, control endpoints.

Every flavor lives under its own prefix (``/openai``, ``/xai``,
``/openrouter``, ``/compat``, ``/anthropic``, ``/gemini``); unprefixed paths
go to the natural flavor (``/v1/chat/completions``, ``/v1/responses``,
``/v1/models`` to openai, ``/v1/messages`` to anthropic, ``/v1beta/...`` to
gemini). Control endpoints: ``POST /_sim/faults`` (``{"fault", "count",
"model", "flavor"}``), ``DELETE /_sim/faults``, ``POST /_sim/reset``,
``GET /_sim/bills``, ``GET /_sim/stats`` (quota counts: ``{"admitted",
"rate_limited", "by_model"}``, see :meth:`.quota.QuotaLimiter.stats`).
Model lists and ``count_tokens`` are free: they write no bill line.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .billing import Tally, list_price
from .dialects import DIALECTS, Dialect
from .dialects.anthropic import count_tokens
from .dialects.base import BadRequest
from .errors import ERROR_STYLES, ErrorContext
from .faults import FaultSpecError
from .flavors import FLAVORS, Flavor
from .quota import Clock
from .serve import STATE, SimulatorState, serve_generation
from .settings import SimulatorSettings
from .wire import dumps, request_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

Route = tuple[str, str, Handler]

_PATHS = {
    "openai-chat": ("/v1/chat/completions",),
    "openai-responses": ("/v1/responses",),
    "anthropic": ("/v1/messages",),
    "gemini": ("/v1beta/models/{target}", "/v1/models/{target}"),
}
_NATURAL = ("openai", "anthropic", "gemini")
"""Flavors that own the unprefixed paths, first come first served."""
_GEMINI_METHODS = ("generateContent", "streamGenerateContent")


def create_app(settings: SimulatorSettings, clock: Clock | None = None) -> web.Application:
    """Build the simulator app (state lives on the app, nothing global).

    ``clock`` (monotonic seconds) drives the quota; tests pass a fake one.
    """
    app = web.Application(client_max_size=settings.client_max_size)
    app[STATE] = SimulatorState.build(settings, clock)
    for flavor in FLAVORS.values():
        for method, path, handler in _flavor_routes(flavor):
            app.router.add_route(method, f"/{flavor.name}{path}", handler)
    taken: set[tuple[str, str]] = set()
    for name in _NATURAL:
        for method, path, handler in _flavor_routes(FLAVORS[name]):
            if (method, path) not in taken:
                app.router.add_route(method, path, handler)
                taken.add((method, path))
    app.router.add_post("/_sim/faults", _program_faults)
    app.router.add_delete("/_sim/faults", _clear_faults)
    app.router.add_post("/_sim/reset", _reset)
    app.router.add_get("/_sim/bills", _bills)
    app.router.add_get("/_sim/stats", _stats)
    app.on_startup.append(_warm_prices)
    return app


def _flavor_routes(flavor: Flavor) -> list[Route]:
    routes: list[Route] = [
        ("POST", path, _generate(flavor, DIALECTS[name]))
        for name in flavor.dialects
        for path in _PATHS[name]
    ]
    routes += [route for name in flavor.dialects for route in _EXTRA_ROUTES.get(name, ())]
    routes.append(("GET", _CATALOG_PATHS[flavor.catalog], _models(flavor)))
    return routes


def _generate(flavor: Flavor, dialect: Dialect) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        hints = dict(request.query)
        target = request.match_info.get("target")
        if target is not None:
            model, _, method = target.rpartition(":")
            if method not in _GEMINI_METHODS or not model:
                raise web.HTTPNotFound()
            hints.update(model=model, method=method)
        return await serve_generation(request, flavor, dialect, hints)

    return handler


async def _count_tokens(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read())
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        return web.json_response(count_tokens(body))
    except (BadRequest, json.JSONDecodeError) as exc:
        ctx = ErrorContext("", 0, request_id(), datetime.now(UTC), str(exc))
        error = ERROR_STYLES["anthropic"].render("invalid_request", ctx)
        return web.json_response(error.body, status=error.status, headers=error.headers)


_EXTRA_ROUTES: dict[str, tuple[Route, ...]] = {
    "anthropic": (("POST", "/v1/messages/count_tokens", _count_tokens),),
}


def _models(flavor: Flavor) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=dumps(model_list(flavor)), content_type="application/json")

    return handler


def model_list(flavor: Flavor) -> dict[str, Any]:
    """The flavor's ``/v1/models`` (or Gemini ``/v1beta/models``) answer."""
    return _CATALOGS[flavor.catalog](flavor)


def _openai_catalog(flavor: Flavor) -> dict[str, Any]:
    owner = "system" if flavor.name == "openai" else flavor.name
    data = [
        {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": owner}
        for m in flavor.models
    ]
    return {"object": "list", "data": data}


def _anthropic_catalog(flavor: Flavor) -> dict[str, Any]:
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}
        for m in flavor.models
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def _gemini_catalog(flavor: Flavor) -> dict[str, Any]:
    methods = ["generateContent", "streamGenerateContent", "countTokens"]
    models = [
        {"name": f"models/{m}", "displayName": m, "supportedGenerationMethods": methods}
        for m in flavor.models
    ]
    return {"models": models}


_CATALOG_PATHS = {"openai": "/v1/models", "anthropic": "/v1/models", "gemini": "/v1beta/models"}
_CATALOGS: dict[str, Callable[[Flavor], dict[str, Any]]] = {
    "openai": _openai_catalog,
    "anthropic": _anthropic_catalog,
    "gemini": _gemini_catalog,
}


async def _program_faults(request: web.Request) -> web.Response:
    try:
        spec = await request.json()
        request.app[STATE].faults.program(
            str(spec["fault"]),
            int(spec.get("count", 1)),
            model=spec.get("model"),
            flavor=spec.get("flavor"),
        )
    except (FaultSpecError, KeyError, TypeError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"pending": request.app[STATE].faults.pending()})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return web.json_response({"pending": 0})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"reset": True})


async def _bills(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].bills.read())


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].quota.stats())


async def _warm_prices(app: web.Application) -> None:
    # genai-prices loads its snapshot on first use; keep that off the first request.
    list_price(Tally(input_tokens=1), "gpt-4o-mini", "openai", datetime.now(UTC))
