"""Forwarding one metered call: the thin async shell around the sans-io core.

Per request: parse just enough of the body (model, stream), resolve the
provider, pick the key, forward, relay the answer as it arrives while the
dialect's meter watches the bytes, and hand one ledger entry to the writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from tollhouse.attribution.chain import Attribution, Attributor, header_tags
from tollhouse.errors import (
    BodyTooLarge,
    GatewayError,
    MissingKey,
    UnknownModel,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollhouse.ids import RequestIds
from tollhouse.ingress import Call, Dialect, parse_json_body, render_error
from tollhouse.ledger.entry import LedgerEntry
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering import meter_body, stream_meter
from tollhouse.metering.usage import Metered
from tollhouse.providers import Provider
from tollhouse.routing import Route, Router
from tollhouse.tasks import spawn

log = logging.getLogger("tollhouse.proxy")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream: ours, the client's auth (replaced), and what aiohttp sets.
DROP_UPSTREAM = HOP_BY_HOP | {
    "host",
    "content-length",
    "accept-encoding",
    "cookie",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
}
DROP_DOWNSTREAM = HOP_BY_HOP | {
    "content-length",
    "content-encoding",
    "set-cookie",
    "date",
    "server",
}
REQUEST_ID_HEADER = "X-Tollhouse-Request-Id"
CLIENT_CLOSED = 499  # nginx's status for "client closed the request"; ledger only


@dataclass(slots=True)
class Exchange:
    """What is known about one request so far; becomes its ledger entry."""

    dialect: Dialect
    started: float
    ts: datetime
    request_id: str
    status: int = 0
    call: Call | None = None
    route: Route | None = None
    metered: Metered | None = None
    ttfb: float | None = None
    incomplete: bool = False
    error: str | None = None
    attribution: Any = None  # Attribution, or a pending process lookup
    tags: dict[str, str] = field(default_factory=dict)


class Gateway:
    """Serves the metered endpoints. Built by :func:`tollhouse.app.create_app`."""

    def __init__(
        self,
        router: Router,
        attributor: Attributor,
        writer: LedgerWriter,
        session: aiohttp.ClientSession,
        *,
        max_body: int,
    ) -> None:
        self.router = router
        self.attributor = attributor
        self.writer = writer
        self.session = session
        self.max_body = max_body
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._recording: set[asyncio.Task[None]] = set()
        self.ids = RequestIds()
        self._urls: dict[tuple[str, str, str], URL] = {}

    async def settle(self) -> None:
        """Wait until no request is in flight and every ledger entry is committed.

        For tests, the demo and shutdown: the writer's flush alone can miss a
        row whose process lookup is still running.
        """
        await self._idle.wait()
        while self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)

    async def handle(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        ex = Exchange(dialect, time.perf_counter(), datetime.now(UTC), self.ids.next())
        self._active += 1
        self._idle.clear()
        try:
            return await self._serve(request, ex)
        except GatewayError as err:
            ex.status, ex.error = err.status, f"gateway:{err.kind}"
            return error_response(dialect, err, ex.request_id)
        except asyncio.CancelledError:  # the client went away (handler cancellation is on)
            ex.status = ex.status or CLIENT_CLOSED
            ex.error, ex.incomplete = ex.error or "client_disconnected", True
            raise
        finally:
            # After the response is on its way: the ledger row is not on the latency path.
            asyncio.get_running_loop().call_soon(self._record, ex)
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def _serve(self, request: web.Request, ex: Exchange) -> web.StreamResponse:
        body = await self._read_body(request)
        payload = parse_json_body(body)
        call = ex.call = ex.dialect.call(request.path, request.match_info, payload)
        route = ex.route = self.router.resolve(call.model, ex.dialect.name)
        client_key = ex.dialect.client_key(request.headers, request.query)
        ex.tags = header_tags(request.headers)
        ex.attribution = self.attributor.begin(request.headers, client_key, request.transport)
        key = self._upstream_key(route.provider, client_key)
        hide_usage = ex.dialect.prepare(payload, call, route.model)
        if hide_usage or payload.get("model", route.model) != call.model:
            body = json.dumps(payload).encode()
        path = ex.dialect.upstream_path(call, route.model)
        upstream = await self._send(request, route.provider, path, key, body)
        async with upstream:
            ex.status = upstream.status
            if call.stream and upstream.status < 300:
                return await self._relay_stream(request, ex, upstream, hide_usage)
            return await self._relay_body(ex, upstream)

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > self.max_body:
            raise BodyTooLarge(_too_large(self.max_body))
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BodyTooLarge(_too_large(self.max_body)) from None

    def _upstream_key(self, provider: Provider, client_key: str | None) -> str:
        """The client's own key passes through; a virtual key (or none) uses ours."""
        if client_key and not self.attributor.is_virtual_key(client_key):
            return client_key
        env = provider.settings.api_key_env
        key = provider.key_from_env()
        if key or provider.kind == "openai-compatible":
            return key
        how = "a tollhouse virtual key was used" if client_key else "the request carried no key"
        raise MissingKey(
            f"no API key for provider {provider.name!r}: {how}, and "
            + (
                f"{env} is not set in the gateway's environment; export it and restart tollhouse"
                if env
                else f"set api_key_env for provider {provider.name!r} in the config"
            )
            + ", or send your own provider key"
        )

    async def _send(
        self, request: web.Request, provider: Provider, path: str, key: str, body: bytes
    ) -> aiohttp.ClientResponse:
        url = self._url(provider, path, request.rel_url.raw_query_string)
        headers = upstream_headers(request.headers, provider.auth_headers(key))
        try:
            return await self.session.request(
                request.method, url, data=body or None, headers=headers, allow_redirects=False
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"provider {provider.name!r} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                f"could not reach provider {provider.name!r} at {provider.base_url}: "
                f"{type(exc).__name__}; check its base_url and that it is up"
            ) from None

    def _url(self, provider: Provider, path: str, query: str) -> URL:
        """The upstream URL, parsed once per distinct (provider, path, query)."""
        key = (provider.name, path, query)
        url = self._urls.get(key)
        if url is None:
            if "key=" in query:  # Gemini's ?key= moves to a header; keys never ride in URLs
                query = "&".join(p for p in query.split("&") if not p.startswith("key="))
            text = provider.upstream_url(path) + (f"?{query}" if query else "")
            if len(self._urls) > 4096:  # bounded: paths carry model names
                self._urls.clear()
            url = self._urls[key] = URL(text, encoded=True)
        return url

    async def passthrough(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        """Unmetered endpoints (model lists, token counting): forwarded as they are."""
        ex = Exchange(dialect, time.perf_counter(), datetime.now(UTC), self.ids.next())
        try:
            provider = self.router.for_dialect(dialect.name)
            if provider is None:
                raise UnknownModel(f"no configured provider speaks {dialect.label}")
            body = await self._read_body(request)
            client_key = dialect.client_key(request.headers, request.query)
            key = self._upstream_key(provider, client_key)
            upstream = await self._send(request, provider, request.path, key, body)
            async with upstream:
                refuse_redirect(upstream)
                data = await upstream.read()
                headers = downstream_headers(upstream.headers, ex.request_id)
                return web.Response(body=data, status=upstream.status, headers=headers)
        except GatewayError as err:
            return error_response(dialect, err, ex.request_id)

    async def _relay_body(self, ex: Exchange, upstream: aiohttp.ClientResponse) -> web.Response:
        try:
            data = await upstream.read()
        except (TimeoutError, aiohttp.ClientError):
            ex.incomplete = True
            raise UpstreamUnavailable("the provider broke off its answer; try again") from None
        ex.ttfb = time.perf_counter() - ex.started
        refuse_redirect(upstream)
        if upstream.status < 300:
            ex.metered = meter_body(ex.dialect.name, data)
        else:
            ex.error = upstream_error_kind(data)
        headers = downstream_headers(upstream.headers, ex.request_id)
        return web.Response(body=data, status=upstream.status, headers=headers)

    async def _relay_stream(
        self,
        request: web.Request,
        ex: Exchange,
        upstream: aiohttp.ClientResponse,
        hide_usage: bool,
    ) -> web.StreamResponse:
        meter = stream_meter(ex.dialect.name, hide_usage_chunk=hide_usage)
        response = web.StreamResponse(
            status=upstream.status, headers=downstream_headers(upstream.headers, ex.request_id)
        )
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                out = meter.feed(chunk)
                if out:
                    await response.write(out)
                    if ex.ttfb is None:
                        ex.ttfb = time.perf_counter() - ex.started
            tail = meter.finish()
            if tail:
                await response.write(tail)
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientError, TimeoutError, asyncio.CancelledError) as exc:
            gone = _client_gone(request, exc)
            ex.error = "client_disconnected" if gone else "upstream_broke"
            ex.incomplete = True
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not gone and request.transport is not None:
                # Mirror the upstream: a cut stream must not look complete to the client.
                request.transport.close()
        finally:
            ex.metered = meter.result()
        return response

    def _record(self, ex: Exchange) -> None:
        pending = ex.attribution
        if pending is None or isinstance(pending, Attribution) or pending.done():
            self.writer.submit(self._entry(ex, _settled(pending)))
        else:  # the process lookup is still running: finish off the request path
            task = spawn(self._record_later(ex), name="tollhouse-record")
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)

    async def _record_later(self, ex: Exchange) -> None:
        self.writer.submit(self._entry(ex, await self.attributor.finish(ex.attribution)))

    def _entry(self, ex: Exchange, who: Attribution) -> LedgerEntry:
        m, route, call = ex.metered, ex.route, ex.call
        provider = route.provider if route else None
        usage = m.usage if m else None
        incomplete = ex.incomplete or bool(
            call and call.stream and ex.status < 300 and not (m and m.complete)
        )
        return LedgerEntry(
            ts=ex.ts,
            request_id=ex.request_id,
            project=who.project,
            attribution=who.how,
            process_name=who.process_name,
            tags={**who.tags, **ex.tags},
            dialect=ex.dialect.name,
            status=ex.status,
            stream=bool(call and call.stream),
            latency_ms=(time.perf_counter() - ex.started) * 1000,
            ttfb_ms=None if ex.ttfb is None else ex.ttfb * 1000,
            provider=provider.name if provider else None,
            pricing_provider=provider.price_provider if provider else None,
            model_requested=call.model if call else None,
            model_served=(m.model if m and m.model else None) or (route.model if route else None),
            incomplete=incomplete,
            usage=usage,
            reported_cost=provider.reported_cost(usage) if provider and usage else None,
            upstream_id=m.upstream_id if m else None,
            error=ex.error or (m.error if m else None),
        )


def _settled(pending: Any) -> Attribution:
    from tollhouse.attribution.chain import UNATTRIBUTED

    if isinstance(pending, Attribution):
        return pending
    found = (
        None if pending is None or pending.cancelled() or pending.exception() else pending.result()
    )
    if found is None:
        return Attribution(UNATTRIBUTED, UNATTRIBUTED)
    return Attribution(found.project, found.how, found.process_name, dict(found.tags))


def _client_gone(request: web.Request, exc: BaseException) -> bool:
    transport = request.transport
    return isinstance(exc, asyncio.CancelledError | ConnectionResetError) or (
        transport is None or transport.is_closing()
    )


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than {limit // (1024 * 1024)} MiB; "
        "raise server.max_body_mb in the config if that is intended"
    )


def upstream_headers(incoming: Mapping[str, str], auth: Mapping[str, str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lower = name.lower()
        if lower in DROP_UPSTREAM or lower.startswith("x-tollhouse-"):
            continue
        headers.add(name, value)
    headers.update(auth)
    headers["Accept-Encoding"] = "identity"
    return headers


def downstream_headers(incoming: CIMultiDictProxy[str], request_id: str) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        if name.lower() not in DROP_DOWNSTREAM:
            headers.add(name, value)
    headers[REQUEST_ID_HEADER] = request_id
    return headers


def refuse_redirect(upstream: aiohttp.ClientResponse) -> None:
    """Keyed calls are never re-sent elsewhere, by us or by the client's SDK."""
    if 300 <= upstream.status < 400:
        raise UpstreamUnavailable(
            f"provider answered HTTP {upstream.status} (a redirect to "
            f"{upstream.headers.get('Location', '?')}); tollhouse never follows redirects "
            "with your key: fix the provider's base_url"
        )


def upstream_error_kind(data: bytes) -> str:
    """A short, key-free label of an upstream error body ("upstream:rate_limit_exceeded").

    Only the error's type/code is kept: messages can echo part of a key.
    """
    try:
        body = json.loads(data)
    except ValueError:
        return "upstream:unparsed"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "upstream:unknown"
    label = err.get("code") if isinstance(err.get("code"), str) else None
    label = label or err.get("type") or err.get("status") or err.get("code")
    return f"upstream:{str(label)[:60]}"


def error_response(dialect: Dialect, err: GatewayError, request_id: str) -> web.Response:
    return web.Response(
        body=render_error(dialect, err),
        status=err.status,
        content_type="application/json",
        headers={REQUEST_ID_HEADER: request_id},
    )
