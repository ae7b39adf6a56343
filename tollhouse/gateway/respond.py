"""A gateway error as the client's dialect shows it: the one place errors become HTTP."""

from __future__ import annotations

from aiohttp import web

from tollhouse.errors import GatewayError
from tollhouse.ingress import Dialect, render_error


def error_response(
    dialect: Dialect, err: GatewayError, headers: dict[str, str], *, gave_up: bool = False
) -> web.Response:
    out = dict(headers)
    if err.retry_after is not None:
        out["Retry-After"] = str(max(1, round(err.retry_after)))
    if gave_up:
        out["x-should-retry"] = "false"
    return web.Response(
        body=render_error(dialect, err),
        status=err.status,
        content_type="application/json",
        headers=out,
    )
