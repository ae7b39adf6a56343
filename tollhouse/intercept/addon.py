"""The mitmproxy addon: meter the flows of LLM hosts, tunnel everything else untouched.

The thin async shell around :mod:`.hosts`, :mod:`.calls` and :mod:`.tap`.
Per connection: start the process lookup as it is accepted, and decide at
the TLS ClientHello whether to decrypt (a known LLM host) or tunnel (any
other host: its bytes and its own certificate pass through). Per metered
request: pass the response on as it arrives while the dialect's meter
watches it, then hand one ledger row, labelled ``trust = "direct"``, to the
same :class:`~tollhouse.ledger.writer.LedgerWriter` the gateway uses. Calls
are never rerouted.

>>> addon = MeterAddon(settings.intercept, writer, ProcessAttributor())
>>> master.addons.add(addon)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mitmproxy import connection, http, tls
from mitmproxy.proxy import server_hooks

from tollhouse.attribution.chain import (
    UNATTRIBUTED,
    Attribution,
    Attributor,
    header_tags,
)
from tollhouse.attribution.process import ProcessAttribution, ProcessAttributor
from tollhouse.ids import RequestIds
from tollhouse.intercept.calls import InterceptedCall, ask_for_usage, classify, dialect_of
from tollhouse.intercept.envelope import unwrap_body
from tollhouse.intercept.hosts import HostTable
from tollhouse.intercept.tap import ResponseTap
from tollhouse.ledger.entry import LedgerEntry, build_entry
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.registry import meter_body
from tollhouse.metering.usage import Metered
from tollhouse.providers import KINDS, Provider
from tollhouse.requestlog import log_request
from tollhouse.settings import InterceptSettings, ProviderSettings
from tollhouse.tasks import spawn

log = logging.getLogger("tollhouse.intercept")

CLIENT_CLOSED = 499
DIRECT = "direct"  # the ledger's trust column: tollhouse watched, the client chose the upstream
Pending = Attribution | asyncio.Future[ProcessAttribution | None]


@dataclass(slots=True)
class Metering:
    """What is known about one intercepted call so far; becomes its ledger row."""

    host: str
    kind: str
    started: float
    ts: datetime
    call: InterceptedCall | None = None
    tap: ResponseTap | None = None
    ttfb: float | None = None
    who: Pending | None = None
    tags: dict[str, str] = field(default_factory=dict)
    asked_usage: bool = False  # we added stream_options.include_usage: hide that chunk
    unmetered: str | None = None  # why the response could not be metered
    recorded: bool = False


class MeterAddon:
    """mitmproxy event hooks (see mitmproxy's addon API); one instance per proxy."""

    def __init__(
        self,
        settings: InterceptSettings,
        writer: LedgerWriter,
        process: ProcessAttributor | None,
        *,
        ready: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> None:
        self.hosts = HostTable.with_extras(settings.hosts)
        self.overrides = {
            host.lower(): _address(target) for host, target in settings.upstream_overrides.items()
        }
        self.writer = writer
        self.attributor = Attributor({}, process)  # no virtual keys: the client's key is real
        self.process = process
        self.ready = ready
        self.ids = RequestIds()
        self._providers: dict[str, Provider] = {}
        self._lookups: dict[str, asyncio.Future[ProcessAttribution | None]] = {}
        self._recording: set[asyncio.Task[None]] = set()

    # -- connections --------------------------------------------------------------------------

    def running(self) -> None:
        from mitmproxy import ctx

        server = ctx.master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
        addresses = [(str(a[0]), int(a[1])) for a in server.listen_addrs()]
        if self.ready is not None:
            self.ready(addresses)

    def client_connected(self, client: connection.Client) -> None:
        # At accept time: the connecting process may be gone by the time a response ends.
        if self.process is not None and client.sockname:
            peer, local = client.peername, client.sockname
            self._lookups[client.id] = self.process.start_for(
                (str(peer[0]), int(peer[1])), (str(local[0]), int(local[1]))
            )

    def client_disconnected(self, client: connection.Client) -> None:
        self._lookups.pop(client.id, None)  # flows already hold their own reference

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if self.hosts.kind_of(data.client_hello.sni) is None:
            data.ignore_connection = True  # not an LLM host: relay the encrypted bytes as they are

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        host = str(data.server.address[0]).lower() if data.server.address else ""
        target = self.overrides.get(host)
        if target is not None:
            data.server.sni = data.server.sni or host  # verify the certificate for the name
            data.server.address = target

    # -- requests -----------------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        host = flow.request.pretty_host
        kind = self.hosts.kind_of(host)
        if kind is None or dialect_of(flow.request.path) is None:
            return
        flow.metadata["tollhouse"] = Metering(host, kind, time.perf_counter(), datetime.now(UTC))

    def request(self, flow: http.HTTPFlow) -> None:
        m: Metering | None = flow.metadata.get("tollhouse")
        if m is None:
            return
        req = flow.request
        m.call = classify(req.method, req.path, req.raw_content or b"")
        if m.call is None:
            del flow.metadata["tollhouse"]
            return
        m.who = self._begin_attribution(flow, req.headers)
        m.tags = header_tags(req.headers)
        for name in [n for n in req.headers if n.lower().startswith("x-tollhouse-")]:
            del req.headers[name]  # like the gateway: tollhouse's headers stay on this machine
        req.headers["accept-encoding"] = "identity"  # the meter reads the bytes as they pass
        asked = ask_for_usage(m.call)
        if asked is not None and not req.headers.get("content-encoding"):
            req.content = asked
            m.asked_usage = True

    def _begin_attribution(self, flow: http.HTTPFlow, headers: Any) -> Pending:
        named = self.attributor.begin(headers, None, None)  # the project header, if any
        if isinstance(named, Attribution) and named.how != UNATTRIBUTED:
            return named
        lookup = self._lookups.get(flow.client_conn.id)
        if lookup is None:
            return Attribution(UNATTRIBUTED, UNATTRIBUTED)
        return self.attributor.follow(lookup)  # this call's git context

    # -- responses ----------------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        assert flow.response is not None
        m: Metering | None = flow.metadata.get("tollhouse")
        if m is None or m.call is None:
            flow.response.stream = True  # unmetered: pass through as it arrives
            return
        headers = flow.response.headers
        # SSE, or Gemini's other stream form: a JSON array sent piece by piece.
        streaming = "text/event-stream" in headers.get("content-type", "") or (
            m.call.stream and m.call.dialect == "gemini"
        )
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            if streaming:  # compressed although we asked for identity: pass it on, say so
                m.unmetered = f"stream sent with content-encoding {encoding}: not metered"
                flow.response.stream = True
            return  # a compressed body: let mitmproxy decode it, meter it whole
        # Hiding the asked-for usage chunk changes the length: only where no length is sent.
        hide = m.asked_usage and "content-length" not in headers
        m.tap = ResponseTap(
            m.call.dialect, streaming=streaming, hide_usage_chunk=hide, envelope=m.call.envelope
        )
        flow.response.stream = self._relay(m)

    def _relay(self, m: Metering) -> Callable[[bytes], Iterable[bytes] | bytes]:
        tap = m.tap
        assert tap is not None

        def relay(chunk: bytes) -> Iterable[bytes] | bytes:
            if not chunk:
                return tap.finish()
            if m.ttfb is None:
                m.ttfb = time.perf_counter() - m.started
            out = tap.feed(chunk)
            return out if out else ()  # an empty chunk would end a chunked HTTP/1 body

        return relay

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow, flow.error.msg if flow.error else "error")

    # -- the ledger ---------------------------------------------------------------------------

    def _record(self, flow: http.HTTPFlow, error: str | None) -> None:
        m: Metering | None = flow.metadata.get("tollhouse")
        if m is None or m.call is None or m.recorded:
            return
        m.recorded = True
        latency = time.perf_counter() - m.started
        metered = self._metered(flow, m)
        task = spawn(self._submit(flow, m, metered, latency, error), name="tollhouse-intercept")
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    def _metered(self, flow: http.HTTPFlow, m: Metering) -> Metered | None:
        assert m.call is not None
        if m.unmetered is not None:
            return Metered(error=m.unmetered)
        if m.tap is not None:
            return m.tap.result()
        if flow.response is not None and flow.response.content is not None:
            body = flow.response.content  # decoded by mitmproxy
            if m.call.envelope is not None:
                body = unwrap_body(body, m.call.envelope)
            return meter_body(m.call.dialect, body)
        return None

    async def _submit(
        self,
        flow: http.HTTPFlow,
        m: Metering,
        metered: Metered | None,
        latency: float,
        error: str | None,
    ) -> None:
        who = await self.attributor.finish(m.who or Attribution(UNATTRIBUTED, UNATTRIBUTED))
        entry = self._entry(flow, m, metered, latency, error, who)
        log_request(entry, self.writer.submit(entry))

    def _entry(
        self,
        flow: http.HTTPFlow,
        m: Metering,
        metered: Metered | None,
        latency: float,
        error: str | None,
        who: Attribution,
    ) -> LedgerEntry:
        call = m.call
        assert call is not None
        provider = self._provider(m.kind, m.host)
        status = flow.response.status_code if flow.response is not None else _no_response(error)
        streaming = m.tap.streaming if m.tap is not None else call.stream
        complete = bool(metered and metered.complete)
        if error is not None and streaming and complete:
            # The whole stream, end marker included, went through before the connection
            # closed (a client that leaves at once after [DONE] races mitmproxy's own end).
            error = None
        return build_entry(
            ts=m.ts,
            request_id=self.ids.next(),
            who=who,
            tags=m.tags,
            dialect=call.dialect,
            status=status,
            stream=streaming,
            latency_s=latency,
            ttfb_s=m.ttfb,
            provider=provider,
            model_requested=call.model,
            model_routed=call.model,
            metered=metered,
            incomplete=error is not None,
            error=error,
            trust=DIRECT,
            attempt_count=1,
        )

    def _provider(self, kind: str, host: str) -> Provider:
        # One adapter per kind, for its pricing id and its provider-reported cost.
        found = self._providers.get(kind)
        if found is None:
            found = KINDS[kind](ProviderSettings(kind, kind, f"https://{host}", ""))
            self._providers[kind] = found
        return found

    async def settle(self) -> None:
        """Wait for every row being recorded, then for the writer to commit them."""
        while self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)


def _no_response(error: str | None) -> int:
    # What the client saw: nothing (it left: nginx's 499, as the gateway records it), or
    # mitmproxy's 502 when the provider could not be reached.
    return CLIENT_CLOSED if error and "client" in error.lower() else 502


def _address(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)
