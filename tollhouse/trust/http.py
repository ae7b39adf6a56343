"""The trust endpoints, a thin aiohttp shell over :class:`~tollhouse.trust.service.TrustService`.

All behind the gateway's Host check; errors are JSON that says how to fix them.

    POST /tollhouse/v1/gate                               {task, action, irreversible[, inputs]}
    POST /tollhouse/v1/actions      (Idempotency-Key)     {task, name, payload, irreversible}
    PUT  /tollhouse/v1/actions/{id}                       {status, result}
    GET  /tollhouse/v1/tasks/{task}
    POST /tollhouse/v1/tasks/{task}/steps/{step}/verify   [{accept} | {min_similarity}]
    POST /tollhouse/v1/tasks/{task}/steps/{step}/approve  [{by}]
    GET  /tollhouse/v1/trust/metrics                      ?since&until&project
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tollhouse import sane
from tollhouse.access_tokens import same
from tollhouse.attribution.chain import UNATTRIBUTED, Attribution, Attributor
from tollhouse.connections import read_body
from tollhouse.errors import BadRequest, GatewayError, TollhouseError
from tollhouse.ingress import DIALECTS
from tollhouse.ingress.base import parse_json_body
from tollhouse.ledger.store import Location, connect
from tollhouse.trust.errors import Held, NotAnOperator, NotFound
from tollhouse.trust.idempotency import parse_key
from tollhouse.trust.service import TrustService, label

TRUST = web.AppKey("trust", TrustService)
ATTRIBUTOR = web.AppKey("trust_attributor", Attributor)
LEDGER_PATH: web.AppKey[Location] = web.AppKey("trust_ledger_path")
OPERATOR_TOKEN: web.AppKey[str | None] = web.AppKey("trust_operator_token")
"""Approving a step takes it (header OPERATOR_HEADER); None: trust.approval = "open"."""
OPERATOR_HEADER = "X-Tollhouse-Operator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Guard = Callable[[web.Request], web.Response | None]
PREFIX = "/tollhouse/v1"
MAX_NAME = 200


def add_routes(app: web.Application, guard: Guard) -> None:
    def route(fn: Callable[[web.Request, TrustService], Awaitable[web.StreamResponse]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            refused = guard(request)
            if refused is not None:
                return refused
            try:
                return await fn(request, request.app[TRUST])
            except GatewayError as err:
                return error(err)

        return handler

    app.router.add_post(f"{PREFIX}/gate", route(gate))
    app.router.add_post(f"{PREFIX}/actions", route(begin_action))
    app.router.add_put(f"{PREFIX}/actions/{{id}}", route(complete_action))
    app.router.add_get(f"{PREFIX}/tasks/{{task}}", route(task_view))
    app.router.add_post(f"{PREFIX}/tasks/{{task}}/steps/{{step}}/verify", route(verify))
    app.router.add_post(f"{PREFIX}/tasks/{{task}}/steps/{{step}}/approve", route(approve))
    app.router.add_get(f"{PREFIX}/trust/metrics", route(metrics))


def error(err: GatewayError) -> web.Response:
    body: dict[str, Any] = {"error": {"type": err.kind, "message": err.message}}
    if isinstance(err, Held):
        body["gate"] = err.decision
    return web.json_response(body, status=err.status)


async def gate(request: web.Request, trust: TrustService) -> web.StreamResponse:
    body = await _json(request)
    task = label(_str(body, "task"), '"task"')
    action = _str(body, "action")
    decision = await trust.gate(
        await _caller(request), task, action, _bool(body, "irreversible"), _inputs(body)
    )
    return web.json_response({"task": task, "action": action, **decision.as_dict()})


async def begin_action(request: web.Request, trust: TrustService) -> web.StreamResponse:
    raw = request.headers.get("Idempotency-Key")
    key = parse_key(raw)
    if key is None:
        raise BadRequest(
            "the Idempotency-Key header is required (1-255 printable characters), e.g. "
            'Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"; reuse it for retries'
        )
    body = await _json(request)
    action = {
        "task": label(_str(body, "task"), '"task"'),
        "name": _str(body, "name"),
        "payload": body.get("payload"),
        "irreversible": _bool(body, "irreversible"),
        "inputs": _inputs(body),
    }
    status, out = await trust.begin_action(await _caller(request), key, action)
    headers = {"Idempotent-Replayed": "true"} if status == 200 else {}
    return web.json_response(out, status=status, headers=headers)


async def complete_action(request: web.Request, trust: TrustService) -> web.StreamResponse:
    caller = await _caller(request)
    record = await trust.complete_action(caller, request.match_info["id"], await _json(request))
    return web.json_response(record.as_dict())


async def task_view(request: web.Request, trust: TrustService) -> web.StreamResponse:
    task = request.match_info["task"]
    trajectory = await trust.trajectory(await _caller(request), task)
    if trajectory is None:
        raise NotFound(f"no model calls are recorded for task {task!r}")
    return web.json_response(trajectory.as_dict())


async def verify(request: web.Request, trust: TrustService) -> web.StreamResponse:
    body = await _json(request, optional=True)
    result = await trust.verify(
        await _caller(request), request.match_info["task"], request.match_info["step"], body
    )
    return web.json_response(result)


async def approve(request: web.Request, trust: TrustService) -> web.StreamResponse:
    _check_operator(request)
    body = await _json(request, optional=True)
    by = body.get("by", "api")
    if not isinstance(by, str) or not by.strip():
        raise BadRequest('"by" must name who approves, e.g. {"by": "alice"}')
    who = sane.text(by.strip(), MAX_NAME)
    result = await trust.approve(
        await _caller(request), request.match_info["task"], request.match_info["step"], who
    )
    return web.json_response(result)


def _check_operator(request: web.Request) -> None:
    """An approval stops taint: if the agent could give it, the gate would hold nothing."""
    token = request.app[OPERATOR_TOKEN]  # set on start-up; never missing, so never open
    if token is not None and not same(request.headers.get(OPERATOR_HEADER), token):
        raise NotAnOperator(
            f"approving a step is a person's call: use `tollhouse approve TASK STEP`, or send "
            f"{OPERATOR_HEADER} with the operator token (trust.operator_token_file, by "
            "default $TOLLHOUSE_HOME/operator.token); agents should verify instead"
        )


async def metrics(request: web.Request, trust: TrustService) -> web.StreamResponse:
    from tollhouse.ledger.report import parse_time
    from tollhouse.trust.metrics import trust_metrics

    q = request.query
    try:
        since, until = parse_time(q.get("since")), parse_time(q.get("until"))
    except TollhouseError as exc:
        raise BadRequest(str(exc)) from None
    await trust.caught_up()
    path, project = request.app[LEDGER_PATH], q.get("project")

    def read() -> dict[str, Any]:
        trust.writer.flush()  # what was answered so far is counted
        conn = connect(path, readonly=True)
        try:
            return trust_metrics(conn, since=since, until=until, project=project)
        finally:
            conn.close()

    found = await asyncio.get_running_loop().run_in_executor(None, read)
    return web.json_response(found)


# Where a caller's key is looked for: each dialect's place, in the registry's order
# (Bearer, x-api-key, x-goog-api-key).
_KEY_DIALECTS = tuple(DIALECTS.values())


async def _caller(request: web.Request) -> Attribution:
    attributor = request.app[ATTRIBUTOR]
    # Whose task: as for a model call, the project's virtual key (in any dialect's
    # header), then the project header, then the calling process.
    h = request.headers
    key = next((k for d in _KEY_DIALECTS if (k := d.client_key(h, {})) is not None), None)
    pending = attributor.begin(request.headers, key, request.transport)
    found = await attributor.finish(pending)
    return found if found.project else Attribution(UNATTRIBUTED, UNATTRIBUTED)


async def _json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await read_body(request)  # bounded in size and time, as every body
    return {} if not raw and optional else parse_json_body(raw)


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f'"{name}" is required: a non-empty string')
    if len(value.strip()) > MAX_NAME:  # cut, two long names could pass for one action
        raise BadRequest(f'"{name}" is {len(value.strip())} characters; use at most {MAX_NAME}')
    # Lone surrogates (JSON escapes) and NULs would be refused by the ledger's row.
    return sane.text(value.strip(), MAX_NAME)


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if not isinstance(value, bool):
        raise BadRequest(f'"{name}" is required: true or false (is the action undoable?)')
    return value


def _inputs(body: dict[str, Any]) -> list[str] | None:
    value = body.get("inputs")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest('"inputs" must be a list of step ids, e.g. ["2", "3"]')
    return value
