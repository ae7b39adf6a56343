"""Operator endpoints for health and the kill switch: list ejections, clear one by
hand; block and unblock a model (or a provider) on every instance.

``POST /tollhouse/v1/models/block`` ``{"provider", "model"?, "reason"?}``,
``POST /tollhouse/v1/models/unblock`` ``{"provider", "model"?}`` (both with the
operator token) and ``GET /tollhouse/v1/models/blocks``.

``POST /tollhouse/v1/models/reset`` with ``{"provider": "openai", "model":
"gpt-4o"}`` (no model: the provider's own ejection) clears a deployment's
circuit, gone mark and cooldown here and in the shared store. It takes the
operator token (header ``X-Tollhouse-Operator``, the file ``tollhouse
approve`` reads): an agent holding only a project key can't re-admit a
model an operator or the breaker took away.

>>> # curl -X POST -H "X-Tollhouse-Operator: $(cat ~/.tollhouse/operator.token)" \\
>>> #   -d '{"provider": "openai", "model": "gpt-4o"}' http://127.0.0.1:4141/tollhouse/v1/models/reset
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from aiohttp import web

from tollhouse.access_tokens import ensure_token, same
from tollhouse.capacity.admission import Capacity
from tollhouse.capacity.policy import BlocksNotShared, ModelPolicy
from tollhouse.connections import read_body
from tollhouse.errors import BadRequest, Forbidden, GatewayError, UnknownModel
from tollhouse.ingress.base import parse_json_body

OPERATOR_HEADER = "X-Tollhouse-Operator"
PREFIX = "/tollhouse/v1/models"
MAX_NAME = 200
_TOKEN: web.AppKey[str] = web.AppKey("models_operator_token")


def add_routes(
    app: web.Application,
    capacity: Capacity,
    providers: Collection[str],
    token_file: Path,
    models: ModelPolicy,
) -> None:
    """The endpoints; the operator token file is made (0600) as the gateway starts."""

    async def startup(app: web.Application) -> None:
        app[_TOKEN] = ensure_token(token_file)

    async def reset(request: web.Request) -> web.StreamResponse:
        try:
            return await _reset(request, capacity, providers)
        except GatewayError as err:
            body = {"error": {"type": err.kind, "message": err.message}}
            return web.json_response(body, status=err.status)

    async def ejections(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ejections": capacity.ejections()})

    async def block(request: web.Request) -> web.StreamResponse:
        try:
            return await _block(request, models, providers, lift=False)
        except GatewayError as err:
            return _error(err)

    async def unblock(request: web.Request) -> web.StreamResponse:
        try:
            return await _block(request, models, providers, lift=True)
        except GatewayError as err:
            return _error(err)

    async def blocks(request: web.Request) -> web.StreamResponse:
        return web.json_response({"blocks": models.listing()})

    app.on_startup.append(startup)
    app.router.add_post(f"{PREFIX}/reset", reset)
    app.router.add_get(f"{PREFIX}/ejections", ejections)
    app.router.add_post(f"{PREFIX}/block", block)
    app.router.add_post(f"{PREFIX}/unblock", unblock)
    app.router.add_get(f"{PREFIX}/blocks", blocks)


def _error(err: GatewayError) -> web.Response:
    body = {"error": {"type": err.kind, "message": err.message}}
    return web.json_response(body, status=err.status)


async def _block(
    request: web.Request, models: ModelPolicy, providers: Collection[str], *, lift: bool
) -> web.StreamResponse:
    """Block or unblock: the operator's decision, so the operator token's."""
    what = "unblocking" if lift else "blocking"
    if not same(request.headers.get(OPERATOR_HEADER), request.app[_TOKEN]):
        raise Forbidden(
            f"{what} a model takes the operator token ({OPERATOR_HEADER}); "
            f"`tollhouse models {'unblock' if lift else 'block'}` sends it"
        )
    body = parse_json_body(await read_body(request))
    provider, model = _name(body, "provider"), body.get("model")
    if model is not None:
        model = _name(body, "model")
    if provider not in providers:
        raise UnknownModel(f"no provider named {provider!r} in the config")
    reason, by = body.get("reason", ""), body.get("by", "operator")
    if not isinstance(reason, str) or not isinstance(by, str):
        raise BadRequest('"reason" and "by" must be strings')
    answer: dict[str, object] = {"provider": provider, "model": model, "shared": True}
    try:
        if lift:
            answer["unblocked"] = await models.unblock(provider, model)
        else:
            await models.block(provider, model, reason, by)
            answer["blocked"] = True
    except BlocksNotShared:  # Redis is down: it holds here, the others learn when it is back
        answer["shared"] = False
        answer["unblocked" if lift else "blocked"] = True
    return web.json_response(answer)


async def _reset(
    request: web.Request, capacity: Capacity, providers: Collection[str]
) -> web.StreamResponse:
    if not same(request.headers.get(OPERATOR_HEADER), request.app[_TOKEN]):
        raise Forbidden(
            f"resetting a model takes the operator token ({OPERATOR_HEADER}); "
            "`tollhouse models reset` sends it"
        )
    body = parse_json_body(await read_body(request))
    provider, model = _name(body, "provider"), body.get("model")
    if model is not None:
        model = _name(body, "model")
    if provider not in providers:
        raise UnknownModel(f"no provider named {provider!r} in the config")
    cleared = await capacity.reset(provider, model)
    return web.json_response({"provider": provider, "model": model, "cleared": cleared})


def _name(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise BadRequest(f'"{field}" must be a non-empty string of at most {MAX_NAME} characters')
    return value.strip()
