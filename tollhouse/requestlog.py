"""One log line per request (``tollhouse serve -v``), and JSON logs for machines.

The line is written from the deferred ledger-record step, after the answer has
gone out, from the entry as the ledger gets it (normalised, priced)::

    req 3f2a… acme openai/gpt-4o-mini 200 in=12 out=40 $0.000026 412ms full

With ``--log-format json`` every log record (these lines included) is one JSON
object; a request's line carries its fields as keys (``project``, ``model``,
``status``, ``input_tokens``, ``output_tokens``, ``cost_usd``, ``latency_ms``,
``trust``, ``error``). Keys never reach a log: the entry holds none.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from tollhouse.ledger.entry import LedgerEntry
from tollhouse.pricing import Cost

log = logging.getLogger("tollhouse.requests")

FIELDS = "request"  # the LogRecord attribute that carries a request line's fields


def log_request(entry: LedgerEntry, cost: Cost) -> None:
    """Log ``entry`` at INFO on ``tollhouse.requests`` (enabled by ``serve -v``)."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = request_fields(entry, cost)
    usd = "unpriced" if cost.usd is None else f"${cost.usd}"
    served = f"{entry.provider}/{entry.model_served}" if entry.provider else entry.model_requested
    line = (
        f"req {entry.request_id} {entry.project} {served} {entry.status}"
        f" in={fields['input_tokens']} out={fields['output_tokens']} {usd}"
        f" {entry.latency_ms:.0f}ms {entry.trust or '-'}"
    )
    if entry.error:
        line += f" error={entry.error}"
    log.info(line, extra={FIELDS: fields})


def request_fields(entry: LedgerEntry, cost: Cost) -> dict[str, Any]:
    u = entry.usage
    return {
        "request_id": entry.request_id,
        "project": entry.project,
        "attribution": entry.attribution,
        "dialect": entry.dialect,
        "provider": entry.provider,
        "model": entry.model_requested,
        "model_served": entry.model_served,
        "status": entry.status,
        "stream": entry.stream,
        "incomplete": entry.incomplete,
        "input_tokens": u.input_tokens if u else None,
        "output_tokens": u.output_tokens if u else None,
        "cost_usd": None if cost.usd is None else str(cost.usd),
        "price_source": cost.source,
        "latency_ms": round(entry.latency_ms, 3),
        "trust": entry.trust,
        "attempts": entry.attempt_count,
        "error": entry.error,
        "tags": entry.tags,
    }


class JSONFormatter(logging.Formatter):
    """Each record as one JSON object on one line: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)
