"""A capture upstream: answers every provider path with a canned answer in that
provider's dialect and records exactly what the gateway sent.

Mount it as four providers (``/openai/v1``, ``/responses/v1``, ``/anthropic``,
``/gemini``); each
request is kept as a :class:`Captured` (path, query, JSON body). The canned
answers are the samples' (text plus a tool call, with usage), whole or
streamed as the request asked; :meth:`CaptureState.fail_next` swaps in
another answer for one dialect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.translate.samples import (
    ANTHROPIC_RESPONSE,
    GEMINI_RESPONSE,
    OPENAI_RESPONSE,
    RESPONSES_RESPONSE,
)
from tests.translate.streams import STREAMS

PREFIXES = {
    "openai": "openai-chat",
    "responses": "openai-responses",
    "anthropic": "anthropic",
    "gemini": "gemini",
}
ANSWERS = {
    "openai-chat": OPENAI_RESPONSE,
    "openai-responses": RESPONSES_RESPONSE,
    "anthropic": ANTHROPIC_RESPONSE,
    "gemini": GEMINI_RESPONSE,
}


@dataclass
class Captured:
    dialect: str
    path: str
    query: str
    body: Any


@dataclass
class CaptureState:
    requests: list[Captured] = field(default_factory=list)
    answers: dict[tuple[str, bool], bytes] = field(default_factory=dict)

    def answer_with(self, dialect: str, *, plain: bytes, stream: bytes) -> None:
        """Answer requests to ``dialect`` with these bodies until :meth:`reset`."""
        self.answers[(dialect, False)] = plain
        self.answers[(dialect, True)] = stream

    def reset(self) -> None:
        self.requests.clear()
        self.answers.clear()


CAPTURE = web.AppKey("capture", CaptureState)


async def _capture(request: web.Request) -> web.Response:
    state = request.app[CAPTURE]
    dialect = PREFIXES[request.path.split("/", 2)[1]]
    if request.path.endswith("/responses"):  # an OpenAI provider spoken to natively
        dialect = "openai-responses"
    body = json.loads(await request.read())
    state.requests.append(Captured(dialect, request.path, request.query_string, body))
    stream = body.get("stream") is True or request.path.endswith(":streamGenerateContent")
    data = state.answers.get((dialect, stream))
    if data is None:
        data = STREAMS[dialect] if stream else json.dumps(ANSWERS[dialect]).encode()
    content_type = "text/event-stream" if stream else "application/json"
    return web.Response(body=data, content_type=content_type)


def capture_app() -> web.Application:
    app = web.Application()
    app[CAPTURE] = CaptureState()
    app.router.add_post("/{tail:.*}", _capture)
    return app
