"""One ledger row, as the request path hands it to the writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from tollhouse import sane
from tollhouse.attribution.gitcontext import GitContext
from tollhouse.ledger.fusion import UnderlyingCall, call_facts, calls_from_facts
from tollhouse.metering import exactjson
from tollhouse.metering.usage import Metered, Usage

if TYPE_CHECKING:
    from tollhouse.attribution.chain import Attribution
    from tollhouse.providers import Provider


@dataclass(slots=True)
class Attempt:
    """One upstream try, or one candidate skipped (``skipped`` says why)."""

    n: int
    provider: str
    model: str
    started: float
    status: int | None = None
    error_class: str | None = None
    latency_ms: float | None = None
    queue_wait_ms: float = 0.0
    retry_after_s: float | None = None
    skipped: str | None = None


@dataclass(slots=True)
class LedgerEntry:
    """Everything recorded about one client request. Bodies never are.

    Cost is left to the writer (:class:`tollhouse.ledger.writer.LedgerWriter`)
    so pricing stays off the request path.
    """

    ts: datetime
    request_id: str
    project: str
    attribution: str
    dialect: str
    status: int
    stream: bool
    latency_ms: float
    provider: str | None = None
    pricing_provider: str | None = None
    model_requested: str | None = None
    model_served: str | None = None
    incomplete: bool = False
    usage: Usage | None = None
    reported_cost: Decimal | None = None
    ttfb_ms: float | None = None
    upstream_id: str | None = None
    error: str | None = None
    process_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    trust: str | None = None  # "full" | "degraded" | "direct" (intercepted); None: nothing answered
    attempts: list[Attempt] = field(default_factory=list)
    attempt_count: int = 0
    queue_wait_ms: float = 0.0
    error_class: str | None = None  # of the last attempt
    # A fused model's request: every call it made (tollhouse.ledger.fusion).
    fusion_calls: list[UnderlyingCall] = field(default_factory=list)

    git: GitContext | None = None  # the calling process's repository, branch, HEAD, dirty


def build_entry(
    *,
    ts: datetime,
    request_id: str,
    who: Attribution,
    tags: dict[str, str],
    dialect: str,
    status: int,
    stream: bool,
    latency_s: float,
    ttfb_s: float | None,
    provider: Provider | None,
    model_requested: str | None,
    model_routed: str | None,
    metered: Metered | None,
    incomplete: bool,
    error: str | None,
    trust: str | None,
    attempts: Sequence[Attempt] = (),
    attempt_count: int | None = None,
) -> LedgerEntry:
    """The one place a request's row is made: by the gateway, trust's replays and
    the interceptor alike. What follows from the facts (the model served, a stream
    cut short, the provider's own cost, the attempts' totals) is derived here.

    ``model_routed``: the model the request was sent as (the meter's word wins);
    ``incomplete``: known cut short (a stream without its end marker is, too);
    ``attempt_count``: when there is no list of attempts (the interceptor's one try).
    """
    m = metered
    usage = m.usage if m else None
    tried = [a for a in attempts if not a.skipped]
    return LedgerEntry(
        ts=ts,
        request_id=request_id,
        project=who.project,
        attribution=who.how,
        process_name=who.process_name,
        tags={**who.tags, **tags},
        dialect=dialect,
        status=status,
        stream=stream,
        latency_ms=latency_s * 1000,
        ttfb_ms=None if ttfb_s is None else ttfb_s * 1000,
        provider=provider.name if provider else None,
        pricing_provider=provider.price_provider if provider else None,
        model_requested=model_requested,
        model_served=(m.model if m and m.model else None) or model_routed,
        incomplete=incomplete or (stream and status < 300 and not (m and m.complete)),
        usage=usage,
        reported_cost=provider.reported_cost(usage) if provider and usage else None,
        upstream_id=m.upstream_id if m else None,
        error=error or (m.error if m else None),
        trust=trust,
        attempts=list(attempts),
        attempt_count=len(tried) if attempt_count is None else attempt_count,
        queue_wait_ms=sum(a.queue_wait_ms for a in attempts),
        error_class=tried[-1].error_class if tried else None,
        git=who.git,
    )


# The names on a row: each is outside text somewhere (a header, a process, a provider).
_NAMES = (
    "project",
    "attribution",
    "process_name",
    "dialect",
    "provider",
    "pricing_provider",
    "model_requested",
    "model_served",
    "upstream_id",
    "trust",
    "error_class",
    "request_id",
)
_names = attrgetter(*_NAMES)
# A provider that reports more than this for one call has a bug, not a bill.
MAX_REPORTED_USD = Decimal(1_000_000)


def normalise(e: LedgerEntry) -> LedgerEntry:
    """Make ``e`` safe to write, journal and count, in place (see :mod:`tollhouse.sane`).

    Text becomes valid, bounded, control-free; usage counts that aren't sane
    are kept in ``usage.raw``, read as 0 and flag the usage ``odd`` (the writer
    doesn't price it); a reported cost that isn't a finite, non-negative,
    plausible amount is dropped. About a microsecond when everything is fine
    (it runs for every request): one probe of all the text at once.
    """
    probe = " ".join(filter(None, _names(e)))
    if e.tags:
        probe += " ".join(e.tags) + " ".join(e.tags.values())
    if e.error:
        probe += e.error
    # Usually a hundred printable ASCII characters; else look at each value (rare, slower).
    if len(probe) > sane.TEXT_LIMIT or not (probe.isascii() and probe.isprintable()):
        _clean_text(e)
    if not 0 <= e.status <= 999:
        e.status = 0
    if not 0 <= e.latency_ms <= 1e12:  # NaN fails too
        e.latency_ms = 0.0
    if e.ttfb_ms is not None:
        e.ttfb_ms = sane.number(e.ttfb_ms)
    if e.queue_wait_ms and not 0 <= e.queue_wait_ms <= 1e12:
        e.queue_wait_ms = 0.0
    if e.usage is not None:
        _check_usage(e.usage)
    r = e.reported_cost
    if r is not None and not (r.is_finite() and 0 <= r <= MAX_REPORTED_USD):
        e.reported_cost = None
        if e.usage is not None:
            e.usage.odd = _join(e.usage.odd, f"reported cost {r}")
    return e


def _clean_text(e: LedgerEntry) -> None:
    for name in _NAMES:
        value = getattr(e, name)
        if value is not None:
            setattr(e, name, sane.maybe_text(value))
    if e.error is not None:
        e.error = sane.text(str(e.error), sane.LONG_TEXT_LIMIT)
    if e.tags:
        e.tags = {sane.text(str(k)): sane.text(str(v)) for k, v in e.tags.items()}


def _check_usage(u: Usage) -> None:
    top = sane.MAX_TOKENS
    try:  # chained comparisons: cheaper than min() and max() of the six, on every request
        if (
            0 <= u.input_tokens <= top
            and 0 <= u.cached_input_tokens <= top
            and 0 <= u.cache_write_tokens <= top
            and 0 <= u.cache_write_1h_tokens <= top
            and 0 <= u.output_tokens <= top
            and 0 <= u.reasoning_tokens <= top
        ):
            _check_parts(u)
            return
    except TypeError:  # not a number at all
        pass
    counts = u.counts()
    odd = []
    for name, value in zip(_USAGE_COUNTS, counts, strict=True):
        if not isinstance(value, int) or sane.count(value) is None:
            odd.append(f"{name}={value}")
            setattr(u, name, 0)
    u.odd = _join(u.odd, ", ".join(odd))


def _check_parts(u: Usage) -> None:
    """Totals contain their parts (usage.py); counts the provider sent that weren't
    numbers (read as 0 by the parsers) are odd too, not a true $0."""
    if (
        u.cached_input_tokens + u.cache_write_tokens > u.input_tokens
        or u.cache_write_1h_tokens > u.cache_write_tokens
        or u.reasoning_tokens > u.output_tokens
    ):
        u.odd = _join(u.odd, "parts exceed their totals: " + ", ".join(map(str, u.counts())))
    not_counts = _not_counts(u.raw) if u.raw else None
    if not_counts:
        u.odd = _join(u.odd, ", ".join(not_counts))


_COUNT_NAMES = ("tokens", "Tokens", "TokenCount", "token_count")


def _not_counts(raw: dict[str, Any], prefix: str = "") -> list[str]:
    """``key=value`` for each count (by its name) in ``raw`` that isn't a whole number."""
    odd = []
    for key, value in raw.items():
        if type(value) is int or value is None:
            continue
        if isinstance(key, str) and key.endswith(_COUNT_NAMES) and not _whole(value):
            odd.append(f"{prefix}{key}={sane.text(repr(value), 40)}")
        elif isinstance(value, dict):
            odd += _not_counts(value, f"{prefix}{key}.")
    return odd


def _whole(value: Any) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()


_USAGE_COUNTS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def _join(first: str | None, more: str) -> str:
    return more if first is None else f"{first}; {more}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_facts(e: LedgerEntry) -> tuple[Any, ...]:
    """``e`` as plain values (what ``marshal`` carries), for the crash journal.

    Not priced, not formatted: the row is built from :func:`from_facts` after
    the response (or at replay), so the request path only copies values.
    """
    u = e.usage
    usage = None if u is None else (*u.counts(), u.raw)
    return (
        (e.ts - _EPOCH) // _MICROSECOND,
        e.request_id,
        e.project,
        e.attribution,
        e.dialect,
        e.status,
        e.stream,
        e.latency_ms,
        e.provider,
        e.pricing_provider,
        e.model_requested,
        e.model_served,
        e.incomplete,
        usage,
        None if e.reported_cost is None else str(e.reported_cost),
        e.ttfb_ms,
        e.upstream_id,
        e.error,
        e.process_name,
        e.tags,
        e.trust,
        [
            (
                a.n,
                a.provider,
                a.model,
                a.status,
                a.error_class,
                a.latency_ms,
                a.queue_wait_ms,
                a.retry_after_s,
                a.skipped,
            )
            for a in e.attempts
        ],
        e.attempt_count,
        e.queue_wait_ms,
        e.error_class,
        call_facts(e.fusion_calls),
        None if e.git is None else tuple(e.git),  # fact 26
    )


def from_facts(f: Sequence[Any]) -> LedgerEntry:
    """The entry :func:`to_facts` made (a usage ``raw`` may come back as its JSON text)."""
    usage = None
    if f[13] is not None:
        inp, cached, write, write_1h, out, reasoning, raw = f[13]
        raw = exactjson.loads(raw) if isinstance(raw, str) else raw
        usage = Usage(inp, cached, write, write_1h, out, reasoning, raw)
    return LedgerEntry(
        ts=_EPOCH + f[0] * _MICROSECOND,
        request_id=f[1],
        project=f[2],
        attribution=f[3],
        dialect=f[4],
        status=f[5],
        stream=f[6],
        latency_ms=f[7],
        provider=f[8],
        pricing_provider=f[9],
        model_requested=f[10],
        model_served=f[11],
        incomplete=f[12],
        usage=usage,
        reported_cost=None if f[14] is None else Decimal(f[14]),
        ttfb_ms=f[15],
        upstream_id=f[16],
        error=f[17],
        process_name=f[18],
        tags=f[19],
        trust=f[20],
        attempts=[Attempt(a[0], a[1], a[2], 0.0, *a[3:]) for a in f[21]],
        attempt_count=f[22],
        queue_wait_ms=f[23],
        error_class=f[24],
        fusion_calls=calls_from_facts(f[25]) if len(f) > 25 else [],
        git=GitContext(*f[26]) if len(f) > 26 and f[26] is not None else None,  # older journals
    )


def plain_facts(facts: tuple[Any, ...]) -> tuple[Any, ...]:
    """``facts`` in the plainest types, for ``marshal`` (which takes no subclass, no
    Decimal): the usage's raw object as its exact JSON text, enums as their values."""
    if facts[13] is not None:
        *counts, raw = facts[13]
        facts = (*facts[:13], (*counts, exactjson.dumps(raw)), *facts[14:])
    return tuple(_plain(value) for value in facts)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return str(value)
