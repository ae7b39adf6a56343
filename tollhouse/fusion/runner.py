"""The async shell of a fused request: panel in parallel, judge, writer (see prompts.py).

Every call goes through the normal dispatcher with its own routes, so quotas,
the fair queue, retries, fallback and translation apply to each. The panel's
and the judge's answers are read whole and metered here (each in its
provider's dialect); the writer's is handed back as an :class:`Answer`, which
the pipeline relays to the client like any other (streamed or not, translated
into the client's dialect, metered by the relay). A member that fails or
takes longer than its timeout is dropped: the writer is told, the
``X-Tollhouse-Fusion`` header names it, the answer's trust is degraded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from tollhouse.capacity import ErrorClass
from tollhouse.errors import BadRequest, GatewayError, NoCandidateServed
from tollhouse.fusion.plan import DEPTH_HEADER, FusionPlan, check_depth
from tollhouse.fusion.prompts import (
    Analysis,
    MemberAnswer,
    judge_payload,
    parse_analysis,
    writer_payload,
)
from tollhouse.gateway.dispatch import Dispatch, Dispatcher
from tollhouse.gateway.models import Answer, Attempt, Exchange, Outgoing, Route
from tollhouse.gateway.routing import Router
from tollhouse.ingress import DIALECTS, Call
from tollhouse.ingress.registry import REQUEST_HEADERS
from tollhouse.ledger.fusion import UnderlyingCall
from tollhouse.metering.registry import meter_body
from tollhouse.metering.usage import Metered
from tollhouse.translate import CODECS, Untranslatable, translate_request
from tollhouse.trust.divergence import similarity
from tollhouse.trust.text import answer_text

AGREEMENT_TAG = "fusion_agreement"  # the panel's mean pairwise similarity, on the row's tags
NEUTRAL = "openai-chat"  # the judge's requests, and the conversation the writer gets
NEUTRAL_PATH = "/v1/chat/completions"


@dataclass(slots=True)
class Asked:
    """One call of a fused request, done: its answer's text (None: dropped)."""

    role: str
    label: str  # provider/model
    call: UnderlyingCall
    attempts: list[Attempt] = field(default_factory=list)
    text: str | None = None
    primary: bool = True


class Fusion:
    """Plans and runs fused requests on the gateway's router and dispatcher."""

    def __init__(self, router: Router, dispatcher: Dispatcher) -> None:
        self.router = router
        self.dispatcher = dispatcher

    def plan(self, out: Outgoing) -> FusionPlan | None:
        """The request's fusion plan, or None when its model is not a fused model."""
        plan = self.router.panel(out.call.model, out.payload, out.dialect.name)
        if plan is None:
            return None
        check_depth(out.headers)
        if out.dialect.name not in CODECS:
            raise BadRequest(
                f"model {plan.name!r} is a fused model; fused models answer OpenAI chat, "
                f"Anthropic and Gemini clients, not {out.dialect.label} yet"
            )
        return plan

    async def run(self, plan: FusionPlan, out: Outgoing, ex: Exchange) -> Answer:
        """Ask the panel and the judge; hand back the writer's answer to relay."""
        calls: list[UnderlyingCall] = []
        ex.fusion_calls = calls  # kept whatever happens next: each call was paid for
        panel_out = _panel_outgoing(out)
        asked = await asyncio.gather(
            *(self._ask("panel", panel_out, routes, plan.member_timeout_s) for routes in plan.panel)
        )
        answers = [MemberAnswer(a.label, a.text) for a in asked if a.text is not None]
        dropped = [f"{a.label} ({a.call.error})" for a in asked if a.text is None]
        self._keep(ex, calls, asked)
        ex.fusion = f"panel={len(asked)}; answered={len(answers)}"
        ex.fusion += "".join(f"; dropped={d}" for d in dropped)
        if not answers:
            raise NoCandidateServed(
                f"no member of fused model {plan.name!r} answered: " + "; ".join(dropped),
                status=503,
            )
        if len(answers) > 1:  # how far the members diverge: a signal kept on the row
            texts = [a.text for a in answers]
            agreement = await asyncio.get_running_loop().run_in_executor(None, _agreement, texts)
            ex.fusion += f"; agreement={agreement:.3f}"
            ex.tags[AGREEMENT_TAG] = f"{agreement:.3f}"
        conversation = _conversation(out, plan.name)
        judged = await self._ask(
            "judge",
            _neutral_outgoing(out, judge_payload(conversation["messages"], answers, dropped)),
            plan.judge,
            plan.member_timeout_s,
        )
        self._keep(ex, calls, [judged])
        analysis = parse_analysis(judged.text) if judged.text is not None else None
        ex.fusion += "; judge=" + (analysis.counts().replace(" ", ",") if analysis else "none")
        writer = _writer_outgoing(
            out, plan, writer_payload(conversation, answers, analysis, dropped)
        )
        answer = await self.dispatcher.dispatch(Dispatch(writer, ex.attempts), plan.writer, True)
        degraded = bool(dropped) or analysis is None or not all(a.primary for a in asked)
        answer.primary = answer.primary and judged.primary and not degraded
        return answer

    def _keep(self, ex: Exchange, calls: list[UnderlyingCall], asked: list[Asked]) -> None:
        for a in asked:
            calls.append(a.call)
            for attempt in a.attempts:
                attempt.n = len(ex.attempts) + 1
                ex.attempts.append(attempt)

    async def _ask(self, role: str, out: Outgoing, routes: list[Route], timeout: float) -> Asked:
        """One call through the dispatcher, read whole and metered; dropped on failure."""
        d = Dispatch(out)
        started = time.monotonic()
        first = routes[0]
        try:
            async with asyncio.timeout(timeout):
                answer = await self.dispatcher.dispatch(d, routes, True)
                asked = await _read(role, answer, started)
        except TimeoutError:
            asked = _dropped(role, first, 0, f"timed out after {timeout:g}s", started)
        except GatewayError as err:
            asked = _dropped(role, first, err.status, f"{err.kind}: {err.message}"[:300], started)
        asked.attempts = d.attempts
        return asked


async def _read(role: str, answer: Answer, started: float) -> Asked:
    route, status = answer.route, answer.response.status
    metered: Metered | None = None
    data = b""
    try:
        async with answer.response:
            data = answer.body if answer.body is not None else await answer.response.read()
        if status < 300:
            metered = meter_body(route.dialect, data)
    finally:
        usage = metered.usage if metered is not None else None
        if usage is not None:
            answer.lease.settle(usage.input_tokens + usage.output_tokens)
        answer.lease.release(None if status < 400 else ErrorClass.CLIENT)
    label = f"{route.provider.name}/{route.model}"
    usage = metered.usage if metered is not None else None
    call = UnderlyingCall(
        role,
        route.provider.name,
        (metered.model if metered is not None else None) or route.model,
        status,
        route.provider.price_provider,
        usage,
        route.provider.reported_cost(usage) if usage is not None else None,
        (time.monotonic() - started) * 1000,
    )
    if status >= 300:
        call.error = f"HTTP {status}"
        return Asked(role, label, call, primary=answer.primary)
    return Asked(role, label, call, text=answer_text(route.dialect, data), primary=answer.primary)


def _agreement(texts: list[str]) -> float:
    """The members' mean pairwise similarity (chrF, trust.divergence): 1.0 all alike."""
    pairs = list(itertools.combinations(texts, 2))
    return sum(similarity(a, b) for a, b in pairs) / len(pairs)


def _dropped(role: str, route: Route, status: int, why: str, started: float) -> Asked:
    latency = (time.monotonic() - started) * 1000
    call = UnderlyingCall(role, route.provider.name, route.model, status, latency_ms=latency)
    call.error = why
    return Asked(role, f"{route.provider.name}/{route.model}", call, primary=False)


def _headers(out: Outgoing, own_dialect: bool) -> dict[str, str]:
    """The client's headers for a call of its fused request (marked one level deep)."""
    headers = {
        k: v
        for k, v in out.headers.items()
        if own_dialect or not k.lower().startswith(REQUEST_HEADERS)
    }
    headers[DEPTH_HEADER] = "1"
    return headers


def _panel_outgoing(out: Outgoing) -> Outgoing:
    """The client's request as each panel member gets it: whole, not streamed."""
    payload = {k: v for k, v in out.payload.items() if k not in ("models", "stream_options")}
    if "stream" in payload:
        payload["stream"] = False
    query = "&".join(p for p in out.query.split("&") if p and p != "alt=sse")
    return replace(
        out,
        payload=payload,
        body=json.dumps(payload).encode(),
        call=Call(out.call.model, False, out.call.path),
        query=query,
        headers=_headers(out, True),
    )


def _neutral_outgoing(out: Outgoing, payload: dict[str, Any]) -> Outgoing:
    """A request of the gateway's own (the judge's), in OpenAI chat."""
    return replace(
        out,
        dialect=DIALECTS[NEUTRAL],
        call=Call(out.call.model, False, NEUTRAL_PATH),
        payload=payload,
        body=json.dumps(payload).encode(),
        query="",
        headers=_headers(out, False),
    )


def _conversation(out: Outgoing, name: str) -> dict[str, Any]:
    """The client's request as an OpenAI chat payload (what the judge and writer read)."""
    payload = {k: v for k, v in out.payload.items() if k != "models"}
    if out.dialect.name == NEUTRAL:
        return payload
    try:
        return translate_request(out.dialect.name, NEUTRAL, payload, model=name, stream=False)
    except Untranslatable as exc:
        raise BadRequest(f"a fused model can't read this request: {exc.reason}") from None


def _writer_outgoing(out: Outgoing, plan: FusionPlan, payload: dict[str, Any]) -> Outgoing:
    """The writer's request in the client's own dialect, streamed when the client's is."""
    client = out.dialect.name
    if client != NEUTRAL:
        payload = translate_request(
            NEUTRAL, client, payload, model=plan.name, stream=out.call.stream
        )
    return replace(
        out,
        payload=payload,
        body=json.dumps(payload).encode(),
        call=Call(plan.name, out.call.stream, out.call.path),
        headers=_headers(out, True),
    )


__all__ = ["Analysis", "Fusion"]
