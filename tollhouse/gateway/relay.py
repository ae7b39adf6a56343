"""Relaying an upstream answer to the client: metered, translated when needed.

Bytes reach the client as they arrive. The meter always reads the provider's
own dialect (usage is the provider's); the translator, when the provider
speaks another dialect than the client, rewrites what the client sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from tollhouse.connections import CONNECTIONS
from tollhouse.errors import UpstreamUnavailable
from tollhouse.gateway.models import Answer, Exchange, UpstreamResponse
from tollhouse.gateway.upstream import downstream_headers, refuse_redirect, upstream_error_kind
from tollhouse.ingress import Dialect
from tollhouse.ingress.registry import ANSWER_HEADERS
from tollhouse.metering import meter_body, stream_meter
from tollhouse.metering.base import StreamMeter
from tollhouse.metering.window import BodyWindow
from tollhouse.settings import ServerSettings
from tollhouse.translate import (
    OMITTED_HEADER,
    GenerationFailed,
    StreamTranslator,
    error_translate,
    failure_body,
    omitted_header,
    stream_translator,
    translate_response,
)
from tollhouse.translate.model import GENERATION_FAILED


async def relay_body(
    request: web.Request, ex: Exchange, dialect: Dialect, answer: Answer, headers: dict[str, str]
) -> web.StreamResponse:
    upstream, route = answer.response, answer.route
    translated = route.dialect != dialect.name
    data = answer.body
    if data is None:
        # A translated answer must be parsed whole, so it is read whole whatever its size.
        limit = None if translated or upstream.status >= 300 else _buffer_limit(request)
        try:
            data, whole = await _read_up_to(upstream, limit)
        except (TimeoutError, aiohttp.ClientError):
            ex.incomplete = True
            raise UpstreamUnavailable("the provider broke off its answer; try again") from None
        if not whole:
            return await _relay_large(request, ex, answer, headers, data)
    ex.ttfb = time.perf_counter() - ex.started
    refuse_redirect(upstream)
    status = upstream.status
    if upstream.status < 300:
        ex.metered = meter_body(route.dialect, data)
        if translated:
            try:
                data = _translated_body(dialect.name, route.dialect, data, route.model)
            except GenerationFailed as failed:  # a 200 whose generation failed
                status, ex.error = failed.error.status, "upstream:generation_failed"
                ex.status = status  # the ledger and the trust cache see the failure
                data = failure_body(dialect.name, failed.error)
    else:
        ex.error = upstream_error_kind(data)
        if translated:
            data = error_translate(dialect.name, route.dialect, upstream.status, data)
    out = _headers(upstream.headers, _noted(headers, answer), translated, "application/json")
    if ex.capture is not None:
        ex.capture.append(data)
    return web.Response(body=data, status=status, headers=out)


def _noted(headers: dict[str, str], answer: Answer) -> dict[str, str]:
    """The client's headers plus, when translation left something out, what it was."""
    if not answer.omitted:
        return headers
    return {**headers, OMITTED_HEADER: omitted_header(answer.omitted)}


def _buffer_limit(request: web.Request) -> int:
    limits = request.app.get(CONNECTIONS) or ServerSettings()
    return int(limits.max_buffered_answer_mb * 1024 * 1024)


async def _read_up_to(upstream: UpstreamResponse, limit: int | None) -> tuple[bytes, bool]:
    """The whole body (True), or its first bytes past ``limit`` (False): too large to hold."""
    length = upstream.content_length
    plain = "Content-Encoding" not in upstream.headers  # else the length is the compressed one
    if limit is None or (plain and length is not None and length <= limit):
        return await upstream.read(), True  # the common case: as fast as before
    held = bytearray()
    async for chunk in upstream.content.iter_any():
        held += chunk
        if len(held) > limit:
            return bytes(held), False
    return bytes(held), True


async def _relay_large(
    request: web.Request, ex: Exchange, answer: Answer, headers: dict[str, str], first: bytes
) -> web.StreamResponse:
    """Relay a huge answer as it arrives, metered from a window of its ends (window.py).

    Not captured for the trust layer: too large to cache or compare. The last
    chunk is held back until the row is sealed, as for streams.
    """
    upstream = answer.response
    refuse_redirect(upstream)
    ex.capture = None
    out = _headers(upstream.headers, headers, False, "application/json")
    response = web.StreamResponse(status=upstream.status, headers=out)
    if upstream.content_length is not None and "Content-Encoding" not in upstream.headers:
        response.content_length = upstream.content_length  # else chunked: it was decoded
    window = BodyWindow()
    window.feed(first)
    await response.prepare(request)
    ex.ttfb = time.perf_counter() - ex.started
    try:
        held = first
        async for chunk in upstream.content.iter_any():
            await response.write(held)
            window.feed(chunk)
            held = chunk
        ex.metered = window.metered(answer.route.dialect)
        if ex.seal is not None:
            ex.seal(ex)
        await response.write(held)
        await response.write_eof()
        ex.delivered = True
    except (ConnectionError, aiohttp.ClientError, TimeoutError) as exc:
        gone = _client_gone(request, exc)
        ex.error, ex.incomplete = "client_disconnected" if gone else "upstream_broke", True
        ex.metered = window.metered(answer.route.dialect)
        if request.transport is not None:
            request.transport.close()  # a body cut short must not look whole
    except asyncio.CancelledError:  # the client left (handler cancellation)
        ex.metered = window.metered(answer.route.dialect)
        raise
    return response


def _translated_body(client: str, target: str, data: bytes, model: str) -> bytes:
    """The answer in the client's dialect; an answer that can't be read is a 502."""
    try:
        parsed = json.loads(data)
        if not isinstance(parsed, dict):
            raise ValueError("not a JSON object")
        return json.dumps(translate_response(client, target, parsed, model=model)).encode()
    except (ValueError, RecursionError) as exc:  # not JSON, not an object, nested past reading
        raise UpstreamUnavailable(
            f"the provider's answer could not be translated ({type(exc).__name__})"
        ) from None


def _headers(
    upstream: Mapping[str, str], extra: dict[str, str], translated: bool, content_type: str
) -> CIMultiDict[str]:
    out = downstream_headers(upstream)
    if translated:  # the provider's dialect's own headers mean nothing to this client
        for name in list(out):
            if name.lower().startswith((*ANSWER_HEADERS, "content-type")):
                del out[name]
        out["Content-Type"] = content_type
    out.update(extra)
    return out


async def relay_stream(
    request: web.Request,
    ex: Exchange,
    dialect: Dialect,
    answer: Answer,
    headers: dict[str, str],
    client_wants_usage: bool,
) -> web.StreamResponse:
    upstream, route = answer.response, answer.route
    translated = route.dialect != dialect.name
    meter = stream_meter(route.dialect, hide_usage_chunk=answer.hide_usage)
    translator = (
        stream_translator(
            dialect.name, route.dialect, model=route.model, include_usage=client_wants_usage
        )
        if translated
        else None
    )
    out_headers = _headers(
        upstream.headers, _noted(headers, answer), translated, "text/event-stream"
    )
    response = web.StreamResponse(status=upstream.status, headers=out_headers)
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            out = meter.feed(chunk)
            if translator is not None:
                out = translator.feed(out)
                _note_failure(ex, translator)  # before the seal below journals the row
            if out:
                if ex.capture is not None:
                    ex.capture.append(out)
                if ex.seal is not None and meter.ended:
                    _seal(ex, meter)  # this chunk may hold the terminal event
                await response.write(out)
                if ex.ttfb is None:
                    ex.ttfb = time.perf_counter() - ex.started
                if meter.ended and (translator is None or translator.ended):
                    ex.delivered = True
        tail = meter.finish()
        if translator is not None:
            tail = translator.feed(tail) + translator.finish()
        if tail and ex.capture is not None:
            ex.capture.append(tail)
        if ex.seal is not None and upstream.status < 300:
            result = meter.result()
            if ex.sealed is None or result != ex.metered:  # else the journal has it already
                ex.metered = result
                ex.seal(ex)  # before the stream's last bytes and its end
        if tail:
            await response.write(tail)
        await response.write_eof()
    except (ConnectionError, aiohttp.ClientError, TimeoutError, asyncio.CancelledError) as exc:
        if ex.delivered:  # e.g. the openai SDK closes at [DONE], before the stream's end
            if isinstance(exc, asyncio.CancelledError):
                raise
            return response
        gone = _client_gone(request, exc)
        ex.error = "client_disconnected" if gone else "upstream_broke"
        ex.incomplete = True
        if isinstance(exc, asyncio.CancelledError):
            raise
        if not gone:
            await _end_with_error(request, response, dialect)
    finally:
        ex.metered = meter.result()
    return response


def _note_failure(ex: Exchange, translator: StreamTranslator) -> None:
    """A streamed generation that failed (a 200 upstream) is no answer: not complete,
    so neither the ledger nor the trust cache takes it for one."""
    failure = translator.failure
    if failure is not None and failure.kind == GENERATION_FAILED and ex.error is None:
        ex.error, ex.incomplete = "upstream:generation_failed", True


def _seal(ex: Exchange, meter: StreamMeter) -> None:
    ex.metered = meter.result()
    if ex.seal is not None:
        ex.seal(ex)


async def _end_with_error(
    request: web.Request, response: web.StreamResponse, dialect: Dialect
) -> None:
    """No fallback after the first byte: end the stream with the dialect's error event."""
    event = dialect.stream_error(
        UpstreamUnavailable("the provider's stream broke off; the answer is incomplete")
    )
    with contextlib.suppress(ConnectionError):
        await response.write(event)
    if request.transport is not None:
        # Also cut the connection: a stream without its end marker must not look complete.
        request.transport.close()


def _client_gone(request: web.Request, exc: BaseException) -> bool:
    transport = request.transport
    return isinstance(exc, asyncio.CancelledError | ConnectionResetError) or (
        transport is None or transport.is_closing()
    )
