"""The request path's vocabulary: what every stage takes and hands on.

Nothing here imports a stage of the path above it (routing, dispatch,
relay, record, pipeline); every stage imports from here. The types:

- :class:`Route`: a provider, a model and the dialect it is spoken to in.
- :class:`Outgoing`: the client's request, as every candidate needs it.
- :class:`Prepared`: the request as one route must receive it.
- :class:`Attempt` (a recorded fact, defined with the ledger row): one try.
- :class:`Answer`: an upstream response to relay.
- :class:`Exchange`: what is known about one request so far; its ledger row.
- :class:`Transport` / :class:`UpstreamResponse`: the seam to providers
  (aiohttp in production, :class:`tollhouse.testing.MockTransport` in tests).
- :class:`RequestHooks`: how a feature that watches requests (trust) plugs in,
  returning what the pipeline should do rather than writing into the exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol
from urllib.parse import quote

from tollhouse import sane
from tollhouse.attribution.chain import PROJECT_HEADER, Attribution
from tollhouse.attribution.process import ProcessAttribution
from tollhouse.budgets.book import Hold
from tollhouse.budgets.gate import BUDGET_HEADER
from tollhouse.capacity import Lease
from tollhouse.ingress import Call, Dialect
from tollhouse.ingress.headers import WARNING_HEADER
from tollhouse.ledger.entry import Attempt
from tollhouse.ledger.fusion import UnderlyingCall
from tollhouse.ledger.writer import Sealed
from tollhouse.metering.usage import Metered
from tollhouse.providers import Provider

__all__ = [
    "Answer",
    "Attempt",
    "CachedAnswer",
    "Exchange",
    "Lookup",
    "Outgoing",
    "PendingAttribution",
    "Prepared",
    "RequestHooks",
    "Route",
    "Transport",
    "UpstreamResponse",
    "Watched",
]

REQUEST_ID_HEADER = "X-Tollhouse-Request-Id"

# Who pays, now (an Attribution) or once the process lookup ends (a future).
PendingAttribution = Attribution | asyncio.Future[ProcessAttribution | None]


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    model: str
    dialect: str  # what the provider is spoken to in: the client's, or translated to


@dataclass(slots=True)
class Outgoing:
    """The client's request, as every candidate needs it."""

    dialect: Dialect
    call: Call
    payload: dict[str, object]
    body: bytes
    method: str
    query: str
    headers: Mapping[str, str]
    client_key: str | None
    project: str
    deadline: float  # time.monotonic() by which a try must have started


@dataclass(slots=True)
class Prepared:
    """The request as one route must receive it: same dialect, or translated."""

    body: bytes
    path: str
    query: str
    headers: Mapping[str, str]
    hide_usage: bool
    omitted: tuple[str, ...] = ()


class ByteStream(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...


class UpstreamResponse(Protocol):
    """What the path reads of a provider's response (an aiohttp ClientResponse)."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def content(self) -> ByteStream: ...
    async def read(self) -> bytes: ...
    def release(self) -> object: ...
    async def __aenter__(self) -> UpstreamResponse: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Transport(Protocol):
    """Sends one request to a provider (:class:`tollhouse.gateway.upstream.Upstreams`)."""

    async def send(
        self,
        method: str,
        provider: Provider,
        path: str,
        query: str,
        incoming: Mapping[str, str],
        key: str,
        body: bytes,
    ) -> UpstreamResponse: ...


@dataclass(slots=True)
class Answer:
    """An upstream response to relay: a success, or an error that is the client's."""

    route: Route
    response: UpstreamResponse
    lease: Lease
    hide_usage: bool
    primary: bool
    body: bytes | None = None  # already read (errors)
    gave_up: bool = False  # retries and fallbacks exhausted: tell SDKs not to retry
    omitted: tuple[str, ...] = ()  # what translation left out, named to the client


class Watched(Protocol):
    """A hook's handle on one request it follows (opaque to the pipeline)."""

    @property
    def needs_project(self) -> bool:
        """Whether the hook must know whose request it is before dispatch."""
        ...


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """An answer a hook has already: the pipeline serves it instead of dispatching."""

    body: bytes
    content_type: str
    served_by: str  # "provider/model" that answered it first


@dataclass(frozen=True, slots=True)
class Lookup:
    """A hook's decision before dispatch: serve ``answer``, or go on (``outcome``
    is told to the client: "miss" or "validity-miss"; None when nothing was looked up)."""

    outcome: str | None = None
    answer: CachedAnswer | None = None


@dataclass(slots=True)
class Exchange:
    """What is known about one request so far; becomes its ledger entry.

    Written by the pipeline and the relay only; hooks read it and return decisions.
    """

    dialect: Dialect
    started: float
    ts: datetime
    request_id: str
    status: int = 0
    call: Call | None = None
    route: Route | None = None  # the route that answered
    primary: bool = True
    metered: Metered | None = None
    ttfb: float | None = None
    incomplete: bool = False
    delivered: bool = False  # a stream's end marker reached the client
    error: str | None = None
    attribution: PendingAttribution | None = None
    tags: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    cache: str | None = None  # "miss" | "validity-miss" | "hit"
    cached_by: str | None = None  # a cache hit: who answered it first
    watch: Watched | None = None  # a hook follows this request
    capture: list[bytes] | None = None  # the answer as relayed, when a hook needs it
    budget: Hold | None = None
    upstream_s: float = 0.0  # waiting on the upstream: dispatch, then its body or stream
    seal: Callable[[Exchange], None] | None = None  # journals the row before the last byte
    sealed: Sealed | None = None  # what the last seal journaled
    sealed_as: tuple[object, ...] = ()
    warning: str | None = None  # told to the client (an unknown X-Tollhouse-* header)
    fusion: str | None = None  # a fused model's request: what its panel did (a header)
    fusion_calls: list[UnderlyingCall] | None = None  # and every call it made (the ledger)

    def provenance(self) -> dict[str, str]:
        headers = {REQUEST_ID_HEADER: self.request_id}
        if self.budget is not None and self.budget.warning:
            headers[BUDGET_HEADER] = "warn; " + self.budget.warning
        if self.cache is not None:  # a lookup: missed plainly, on its assumptions, or hit
            headers["X-Tollhouse-Cache"] = self.cache
        tried = [a for a in self.attempts if not a.skipped]
        headers["X-Tollhouse-Attempts"] = str(len(tried))
        if self.route is not None and self.status < 400:  # an error was served by no model
            served = self.cached_by or f"{self.route.provider.name}/{self.route.model}"
            headers["X-Tollhouse-Served-By"] = served
            headers["X-Tollhouse-Trust"] = "full" if self.primary else "degraded"
        if self.fusion is not None:
            headers["X-Tollhouse-Fusion"] = header_safe(self.fusion)
        who = self.attribution
        if isinstance(who, Attribution):  # known by now (a process lookup may still run)
            headers[PROJECT_HEADER] = f"{header_safe(who.project)}; by={who.how}"
        if self.warning is not None:
            headers[WARNING_HEADER] = header_safe(self.warning)
        return headers

    def complete(self) -> bool:
        """Whether the client got the whole answer (a stream: its end marker)."""
        m = self.metered
        stream = self.call is not None and self.call.stream
        return not self.incomplete and not (stream and not (m and m.complete))

    def project(self) -> str | None:
        """Whose request, once known (None while a process lookup runs)."""
        who = self.attribution
        return who.project if isinstance(who, Attribution) else None


class RequestHooks(Protocol):
    """A feature that watches requests (the trust service), in the order it is called.

    Each returns what the pipeline should do; none writes into the exchange.
    """

    def watch(
        self, headers: Mapping[str, str], out: Outgoing, match: Mapping[str, str]
    ) -> Watched | None:
        """Follow this request? (sync, a few dict lookups; BadRequest for bad headers)."""
        ...

    async def before_dispatch(self, watched: Watched, out: Outgoing, request_id: str) -> Lookup:
        """With the project known (``out.project``): check, and maybe answer from a cache."""
        ...

    def after_dispatch(
        self, watched: Watched | None, out: Outgoing, primary: bool, match: Mapping[str, str]
    ) -> Watched | None:
        """An answer is coming: follow it (its bytes are captured) or not."""
        ...

    async def before_reply(self, watched: Watched, ex: Exchange) -> None:
        """A whole answer is ready for the client (not called for streams)."""
        ...

    def finished(self, watched: Watched, ex: Exchange) -> None:
        """The request is over (the client has its answer, or left)."""
        ...

    async def settle(self) -> None:
        """Every background task of finished requests done (tests, shutdown)."""
        ...


def header_safe(text: str) -> str:
    """``text`` as a header value: printable ASCII, the rest percent-encoded."""
    if text.isascii() and text.isprintable():
        return text
    return quote(sane.text(text), safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")
