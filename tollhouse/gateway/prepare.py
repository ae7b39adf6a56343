"""Preparing a request for one route: the same dialect, or translated into another.

Sans-io: the client's :class:`Outgoing` and a :class:`Route` in, the
:class:`Prepared` body, path, query and headers out. The target dialect says
where a translated call goes and what it needs (:mod:`tollhouse.ingress`).
"""

from __future__ import annotations

import json

from tollhouse.gateway.models import Outgoing, Prepared, Route
from tollhouse.ingress import DIALECTS
from tollhouse.ingress.registry import REQUEST_HEADERS
from tollhouse.translate import repair_native, translate_request_noted


def prepare(out: Outgoing, route: Route) -> Prepared:
    """The request as ``route`` must receive it: same dialect, or translated."""
    if route.dialect == out.dialect.name:
        repaired = repair_native(route.dialect, out.payload)  # after a fallback's turn
        payload, omitted = dict(repaired.body), repaired.omitted
        hide = out.dialect.prepare(payload, out.call, route.model)
        body = out.body
        if hide or omitted or payload.get("model", route.model) != out.call.model:
            body = json.dumps(payload).encode()
        path = out.dialect.upstream_path(out.call, route.model)
        return Prepared(body, path, out.query, out.headers, hide, omitted)
    noted = translate_request_noted(
        out.dialect.name, route.dialect, out.payload, model=route.model, stream=out.call.stream
    )
    translated = noted.body
    target = DIALECTS[route.dialect]
    target.translated_payload(translated, out.call.stream)
    path, query = target.translated_target(route.model, out.call.stream)
    # The client's dialect's own headers (any dialect's) are not the target's.
    headers = {k: v for k, v in out.headers.items() if not k.lower().startswith(REQUEST_HEADERS)}
    headers.update(route.provider.dialect_headers())
    return Prepared(json.dumps(translated).encode(), path, query, headers, False, noted.omitted)
