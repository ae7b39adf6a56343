"""A fused request in the ledger: one row carrying the sum, every call beside it.

A fused model's request makes one ``requests`` row (the client made one
request). Its usage is the sum of every underlying call's (panel members,
judge, writer) and its cost the sum of their exact costs, each call priced
as its own model (``price_source`` "fusion"; NULL when any call is
unpriced). Each call is kept in ``fusion_calls`` with its role, usage, cost
and status: a dropped member too, at its cost (0 for an error).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tollhouse import sane
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Cost, PriceQuery, Pricer

if TYPE_CHECKING:
    from tollhouse.ledger.entry import LedgerEntry

FUSION_PROVIDER = "fusion"  # the row's provider: the spend of its panel, judge and writer
NO_ANSWER = "no-answer"  # a call given up on before any answer: its cost is unknown
COLUMNS = (
    "request_id, n, ts, role, provider, model, status, input_tokens, cached_input_tokens, "
    "cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost_usd, "
    "price_source, latency_ms, error"
)
INSERT = f"INSERT INTO fusion_calls ({COLUMNS}) VALUES ({', '.join('?' * 17)})"
MIGRATION = """
        CREATE TABLE fusion_calls (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,         -- the fused request's row in requests
            n INTEGER NOT NULL,               -- 1, 2... in the order they were made
            ts TEXT NOT NULL,
            role TEXT NOT NULL,               -- panel | judge | writer
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            status INTEGER NOT NULL,          -- 0: no answer (timed out, refused)
            input_tokens INTEGER,
            cached_input_tokens INTEGER,
            cache_write_tokens INTEGER,
            cache_write_1h_tokens INTEGER,
            output_tokens INTEGER,
            reasoning_tokens INTEGER,
            cost_usd TEXT,                    -- exact decimal; NULL when unknown
            price_source TEXT NOT NULL,
            latency_ms REAL,
            error TEXT                        -- why a member was dropped
        );
        CREATE INDEX fusion_calls_request ON fusion_calls (request_id);
        CREATE INDEX fusion_calls_ts ON fusion_calls (ts);
        """


@dataclass(slots=True)
class UnderlyingCall:
    """One call a fused request made: a panel member's, the judge's or the writer's."""

    role: str  # panel | judge | writer
    provider: str
    model: str
    status: int
    pricing_provider: str | None = None
    usage: Usage | None = None
    reported_cost: Decimal | None = None
    latency_ms: float | None = None
    error: str | None = None


def summed(calls: list[UnderlyingCall]) -> Usage | None:
    """Every call's tokens added up (None when no call reported usage)."""
    usages = [c.usage for c in calls if c.usage is not None]
    if not usages:
        return None
    inp, cached, write, write_1h, out, reasoning = (
        sum(column) for column in zip(*(u.counts() for u in usages), strict=True)
    )
    return Usage(inp, cached, write, write_1h, out, reasoning, {"fusion_calls": len(calls)})


def call_cost(call: UnderlyingCall, when: datetime, pricer: Pricer) -> Cost:
    """One call priced as its own model, like a row of its own."""
    if call.usage is None:
        if call.status == 0:  # timed out waiting: what the provider bills is unknown
            return Cost(None, NO_ANSWER)
        return Cost(None, "no-usage") if call.status < 400 else Cost(Decimal(0), "error")
    query = PriceQuery(
        call.provider, call.pricing_provider, (call.model,), call.usage, call.reported_cost, when
    )
    try:
        return pricer.cost(query)
    except Exception:  # a pricing bug must not cost the row
        return Cost(None, "unpriced")


def total_cost(calls: list[UnderlyingCall], when: datetime, pricer: Pricer) -> Cost:
    """The fused row's cost: the exact sum; "fusion-partial" when a call timed out
    (its cost unknown, left out); unknown when a call that answered is unpriced."""
    total, source = Decimal(0), "fusion"
    for call in calls:
        cost = call_cost(call, when, pricer)
        if cost.source == NO_ANSWER:
            source = "fusion-partial"
        elif cost.usd is None:
            return Cost(None, "unpriced")
        else:
            total += cost.usd
    return Cost(total, source)


def call_rows(
    request_id: str, calls: list[UnderlyingCall], when: datetime, pricer: Pricer
) -> list[tuple[str, tuple[Any, ...]]]:
    """The ``fusion_calls`` statements of one fused request."""
    ts = when.isoformat(timespec="microseconds")
    rows = []
    for n, call in enumerate(calls, 1):
        cost = call_cost(call, when, pricer)
        counts = call.usage.counts() if call.usage is not None else (None,) * 6
        row = (
            request_id,
            n,
            ts,
            call.role,
            sane.text(call.provider),
            sane.text(call.model),
            call.status,
            *counts,
            None if cost.usd is None else format(cost.usd, "f"),
            cost.source,
            None if call.latency_ms is None else round(call.latency_ms, 3),
            None if call.error is None else sane.text(call.error, sane.LONG_TEXT_LIMIT),
        )
        rows.append((INSERT, row))
    return rows


def writer_call(
    provider: str | None,
    pricing_provider: str | None,
    model: str | None,
    status: int,
    usage: Usage | None,
    reported_cost: Decimal | None,
    error: str | None,
) -> UnderlyingCall | None:
    """The writer's call, from what the relay metered (None when nothing answered)."""
    if provider is None:
        return None
    return UnderlyingCall(
        "writer",
        provider,
        model or "",
        status,
        pricing_provider,
        None if usage is None else replace(usage),
        reported_cost,
        error=error,
    )


def fuse(entry: LedgerEntry, calls: list[UnderlyingCall], degraded: bool) -> LedgerEntry:
    """``entry`` (as made for the writer's answer) as the fused request's row: the
    writer's call joins the others, the row carries their sum, in place."""
    writer = writer_call(
        entry.provider,
        entry.pricing_provider,
        entry.model_served,
        entry.status,
        entry.usage,
        entry.reported_cost,
        entry.error if entry.status >= 400 else None,
    )
    entry.fusion_calls = [*calls, *([writer] if writer is not None else [])]
    entry.usage = summed(entry.fusion_calls)
    entry.provider, entry.pricing_provider = FUSION_PROVIDER, None
    entry.model_served, entry.reported_cost = entry.model_requested, None
    if degraded and entry.trust == "full":
        entry.trust = "degraded"
    return entry


def call_facts(calls: list[UnderlyingCall]) -> list[tuple[Any, ...]]:
    """``calls`` as plain values for the crash journal (a replayed row is priced as
    their sum; the ``fusion_calls`` rows themselves are not replayed)."""
    return [
        (
            c.role,
            c.provider,
            c.model,
            c.status,
            c.pricing_provider,
            None if c.usage is None else c.usage.counts(),
            None if c.reported_cost is None else str(c.reported_cost),
            c.latency_ms,
            c.error,
        )
        for c in calls
    ]


def calls_from_facts(facts: list[Any]) -> list[UnderlyingCall]:
    return [
        UnderlyingCall(
            role,
            provider,
            model,
            status,
            pricing,
            None if counts is None else Usage(*counts),
            None if reported is None else Decimal(reported),
            latency,
            error,
        )
        for role, provider, model, status, pricing, counts, reported, latency, error in facts
    ]
