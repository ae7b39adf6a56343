"""One ledger row, as the request path hands it to the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollhouse.metering.usage import Usage


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
    attempts: list[Any] = field(default_factory=list)  # tollhouse.dispatch.Attempt
    attempt_count: int = 0
    queue_wait_ms: float = 0.0
    error_class: str | None = None  # of the last attempt
