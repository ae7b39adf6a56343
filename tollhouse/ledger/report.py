"""Spend by project, model, provider, day or tag: exact sums over the ledger.

Costs are summed as Decimals in Python: SQL's SUM over decimal text would
go through floats.

>>> rows = summarize(conn, by=["project", "model"], since=None, until=None)
>>> print(render(rows, ["project", "model"], "table"))
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tollhouse.errors import TollhouseError
from tollhouse.ledger import totals as derived

GROUP_COLUMNS = {
    "project": "project",
    "model": "COALESCE(model_served, model_requested)",
    "provider": "provider",
    "day": "substr(ts, 1, 10)",
    "hour": "substr(ts, 1, 13)",
    "dialect": "dialect",
    "attribution": "attribution",
    "trust": "trust",  # full | degraded (through the gateway) | direct (intercepted)
    "status": "status",  # the HTTP status the client got (499: it left first)
}
TOKEN_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
FORMATS = ("table", "json", "csv")
_RELATIVE = re.compile(r"^(\d+)([dhm])$")


class ReportError(TollhouseError):
    """A report option is wrong; the message says how to fix it."""


# Usage without a price: no price known, or usage too odd to price (kept raw in the row).
UNPRICED = ("unpriced", "odd-usage")


@dataclass
class Group:
    keys: tuple[str, ...]
    requests: int = 0
    errors: int = 0  # answered with a status >= 400 (the gateway's, or the provider's)
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))
    cost: Decimal = Decimal(0)
    unpriced: int = 0
    unmetered: int = 0

    def add(self, row: sqlite3.Row) -> None:
        self.requests += 1
        if (row["row_status"] or 0) >= 400:
            self.errors += 1
        for name in TOKEN_FIELDS:
            self.tokens[name] += row[name] or 0
        if row["cost_usd"] is not None:
            self.cost += Decimal(row["cost_usd"])
        elif row["price_source"] in UNPRICED:
            self.unpriced += 1
        else:
            self.unmetered += 1


def parse_by(spec: str) -> list[str]:
    """``"project,tag:purpose"`` → ``["project", "tag:purpose"]``, validated."""
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    for key in keys:
        if key not in GROUP_COLUMNS and not (key.startswith("tag:") and len(key) > 4):
            raise ReportError(
                f"--by: unknown key {key!r}; use any of {', '.join(GROUP_COLUMNS)} or tag:NAME"
            )
    return keys or ["project"]


def parse_time(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """``2026-11-01``, an ISO timestamp, or relative ``7d`` / ``12h`` / ``30m`` ago."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative[1]), relative[2]
        try:
            return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
        except OverflowError:
            raise ReportError(
                f"{value!r} reaches back before the year 1; use a shorter time, or leave it out"
            ) from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(
            f"not a time: {value!r}; use 2026-11-01, 2026-11-01T12:00, or 7d / 12h / 30m"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def summarize(
    conn: sqlite3.Connection,
    by: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    from_rows: bool = False,
) -> list[dict[str, Any]]:
    """One dict per group: the group keys, then the totals (cost as a decimal string).

    Answered from the derived totals (:mod:`tollhouse.ledger.totals`) when they hold
    every key and count every row; else by reading the rows, when ``progress`` is
    called with the number of ledger rows read, every 5,000. ``from_rows``: read the
    rows even when the totals could answer (what ``tollhouse ledger verify`` checks).
    """
    summed = None if from_rows else derived.group(conn, by, since, until, project)
    if summed is not None:
        return _from_totals(summed, by)
    groups: dict[tuple[str, ...], Group] = {}
    for n, row in enumerate(_rows(conn, by, since, until, project), 1):
        keys = tuple(_key(row, k) for k in by)
        groups.setdefault(keys, Group(keys)).add(row)
        if progress is not None and n % 5000 == 0:
            progress(n)
    ordered = sorted(groups.values(), key=lambda g: (-g.cost, g.keys))
    return [_as_dict(g, by) for g in ordered]


def summarize_each(
    conn: sqlite3.Connection,
    bys: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """:func:`summarize` by each single key of ``bys``, from one read of the totals.

    The totals are grouped once by every key together, then added up per key.
    """
    summed = derived.group(conn, bys, since, until, project)
    if summed is None:
        return {key: summarize(conn, [key], since, until, project) for key in bys}
    out = {}
    for i, key in enumerate(bys):
        rolled: dict[tuple[str, ...], derived.Sums] = {}
        for keys, sums in summed.items():
            rolled.setdefault((keys[i],), derived.Sums()).merge(sums)
        out[key] = _from_totals(rolled, [key])
    return out


def _from_totals(
    summed: dict[tuple[str, ...], derived.Sums], by: Sequence[str]
) -> list[dict[str, Any]]:
    rows = []
    for keys, sums in summed.items():
        out: dict[str, Any] = dict(zip(by, keys, strict=True))
        counts = sums.counts
        out["requests"] = counts["requests"]
        out["errors"] = counts["errors"]
        out.update({name: counts[name] for name in TOKEN_FIELDS})
        out["cost_usd"] = sums.cost()
        out["unpriced_requests"] = counts["unpriced"]
        out["unmetered_requests"] = counts["unmetered"]
        rows.append(out)
    rows.sort(key=lambda r: (-r["cost_usd"], tuple(r[k] for k in by)))
    for r in rows:
        r["cost_usd"] = format(r["cost_usd"], "f")
    return rows


def count_rows(
    conn: sqlite3.Connection,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> int:
    """How many ledger rows a report over this window reads (for a progress bar)."""
    where, params = time_window(since, until)
    if project:
        where += " AND project = ?"
        params.append(project)
    return int(conn.execute(f"SELECT count(*) FROM requests WHERE {where}", params).fetchone()[0])


def _rows(
    conn: sqlite3.Connection,
    by: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    project: str | None,
) -> Iterable[sqlite3.Row]:
    selects = [f"{GROUP_COLUMNS[k]} AS {k!s}" for k in by if k in GROUP_COLUMNS]
    selects += ["tags", "status AS row_status", "cost_usd", "price_source", *TOKEN_FIELDS]
    where, params = time_window(since, until)
    if project:
        where += " AND project = ?"
        params.append(project)
    conn.row_factory = sqlite3.Row
    sql = f"SELECT {', '.join(selects)} FROM requests WHERE {where}"
    return conn.execute(sql, params)


def _key(row: sqlite3.Row, key: str) -> str:
    if key.startswith("tag:"):
        return str(json.loads(row["tags"] or "{}").get(key[4:].lower(), "(none)"))
    value = row[key]
    return "(none)" if value is None else str(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _as_dict(g: Group, by: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(zip(by, g.keys, strict=True))
    out["requests"] = g.requests
    out["errors"] = g.errors
    out.update(g.tokens)
    out["cost_usd"] = format(g.cost, "f")
    out["unpriced_requests"] = g.unpriced
    out["unmetered_requests"] = g.unmetered
    return out


def render(rows: list[dict[str, Any]], by: Sequence[str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        return _csv(rows, _columns(by))
    if fmt == "table":
        return _table(rows, by)
    raise ReportError(f"--format: use one of {', '.join(FORMATS)}")


def _columns(by: Sequence[str]) -> list[str]:
    return [
        *by,
        "requests",
        "errors",
        *TOKEN_FIELDS,
        "cost_usd",
        "unpriced_requests",
        "unmetered_requests",
    ]


def _csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


SHORT = {
    "cached_input_tokens": "cached in",
    "cache_write_tokens": "cache write",
    "input_tokens": "input",
    "output_tokens": "output",
    "reasoning_tokens": "reasoning",
    "unpriced_requests": "unpriced",
    "unmetered_requests": "unmetered",
    "cost_usd": "cost (USD)",
}


def _table(rows: list[dict[str, Any]], by: Sequence[str]) -> str:
    if not rows:
        return "No requests in the ledger for this period."
    columns = _columns(by)
    cells = [[SHORT.get(c, c) for c in columns]]
    cells += [
        [str(row[k]) for k in by] + [cost_cell(row, c) for c in columns[len(by) :]] for row in rows
    ]
    cells.append(_total_row(rows, by, columns))
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for n, r in enumerate(cells):
        left = len(by)
        parts = [
            v.ljust(w) if i < left else v.rjust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0 or n == len(cells) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _total_row(rows: list[dict[str, Any]], by: Sequence[str], columns: list[str]) -> list[str]:
    total = totals(rows)
    return ["total"] + [""] * (len(by) - 1) + [cost_cell(total, c) for c in columns[len(by) :]]


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts summed and the cost added up (a decimal string) over summary rows."""
    out: dict[str, Any] = {}
    for row in rows:
        for name, value in row.items():
            if name == "cost_usd":
                out[name] = out.get(name, Decimal(0)) + Decimal(value)
            elif isinstance(value, int):
                out[name] = out.get(name, 0) + value
    if "cost_usd" in out:
        out["cost_usd"] = format(out["cost_usd"], "f")
    return out


def cost_cell(row: dict[str, Any], column: str) -> str:
    """A cell of a summary row; a cost is never shown as a plain $0 it isn't.

    No priced call: ``unpriced``; some priced and some not: ``≥`` the priced part.
    """
    if column != "cost_usd":
        return cell(row[column])
    unknown = row.get("unpriced_requests", 0) + row.get("unmetered_requests", 0)
    cost = Decimal(row[column])
    if unknown and not cost:
        return "unpriced"
    return ("≥" if unknown else "") + money(cost)


def cell(value: Any) -> str:
    """A count with thousands separators, or money rounded for display."""
    if isinstance(value, int):
        return f"{value:,}"
    return money(Decimal(value))


def money(d: Decimal) -> str:
    """Round for display only: 6 decimals below a cent, else 4."""
    return f"{d:,.6f}" if d < Decimal("0.01") else f"{d:,.4f}"


ERROR_CLASSES = (
    "rate_limit",
    "overloaded",
    "server",
    "timeout",
    "connection",
    "model_gone",
    "client",
)


def capacity_summary(
    conn: sqlite3.Connection, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Per upstream model: attempts, error classes, skips, queue wait, 429s both ways."""
    where, params = time_window(since, until)
    conn.row_factory = sqlite3.Row
    rows = conn.execute(
        "SELECT provider, model, count(*) FILTER (WHERE skipped IS NULL) AS attempts, "
        "count(*) FILTER (WHERE skipped IS NULL AND error_class IS NULL) AS ok, "
        "count(*) FILTER (WHERE skipped IS NOT NULL) AS skipped, "
        "count(*) FILTER (WHERE status = 429) AS received_429, "
        "coalesce(avg(queue_wait_ms) FILTER (WHERE skipped IS NULL), 0) AS avg_queue_wait_ms, "
        "coalesce(max(queue_wait_ms), 0) AS max_queue_wait_ms, "
        + ", ".join(f"count(*) FILTER (WHERE error_class = '{c}') AS {c}" for c in ERROR_CLASSES)
        + f" FROM attempts WHERE {where} GROUP BY provider, model"
        " ORDER BY attempts DESC, provider, model",
        params,
    ).fetchall()
    returned = _returned_429(conn, where, params)
    out = []
    for r in rows:
        item = dict(r)
        item["avg_queue_wait_ms"] = round(item["avg_queue_wait_ms"], 3)
        item["returned_429"] = returned.get((r["provider"], r["model"]), 0)
        out.append(item)
    return out


def time_window(since: datetime | None, until: datetime | None) -> tuple[str, list[str]]:
    """A ``WHERE`` clause (and its parameters) for rows with ``since <= ts < until``."""
    where, params = ["1=1"], []
    if since:
        where.append("ts >= ?")
        params.append(_iso(since))
    if until:
        where.append("ts < ?")
        params.append(_iso(until))
    return " AND ".join(where), params


def _returned_429(
    conn: sqlite3.Connection, where: str, params: list[str]
) -> dict[tuple[str, str], int]:
    """429s tollhouse answered clients, by the model they asked for."""
    rows = conn.execute(
        "SELECT coalesce(provider, '(none)'), coalesce(model_served, model_requested), count(*) "
        f"FROM requests WHERE status = 429 AND {where} GROUP BY 1, 2",
        params,
    )
    return {(p, m): n for p, m, n in rows}


# The numbers of one upstream model's attempts, in the order the reports show them.
CAPACITY_COLUMNS = (
    "attempts",
    "ok",
    *ERROR_CLASSES,
    "skipped",
    "received_429",
    "returned_429",
    "avg_queue_wait_ms",
    "max_queue_wait_ms",
)


def _live_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The gateway's live ejection columns, when the rows carry them (tollhouse.cli.models)."""
    return [c for c in ("ejected", "ejected_since", "ejected_until") if rows and c in rows[0]]


def render_capacity(rows: list[dict[str, Any]], fmt: str) -> str:
    keys = ["provider", "model"]
    columns = [*keys, *CAPACITY_COLUMNS, *_live_columns(rows)]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        return _csv(rows, columns)
    if not rows:
        return "No upstream attempts in the ledger for this period."
    cells = [columns] + [[_plain_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(
            v.ljust(w) if i < 2 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _plain_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def quarantined(
    conn: sqlite3.Connection, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Rows the ledger refused and kept aside, with why (oldest first)."""
    where, params = time_window(since, until)
    sql = f"SELECT ts, request_id, kind, reason, content FROM quarantine WHERE {where} ORDER BY id"
    try:
        found = conn.execute(sql, params).fetchall()
    except Exception:  # a ledger from before the quarantine table (opened read-only)
        return []
    keys = ("ts", "request_id", "kind", "reason", "content")
    return [dict(zip(keys, tuple(row), strict=True)) for row in found]


def render_quarantine(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        return _csv(rows, ["ts", "request_id", "kind", "reason", "content"])
    if not rows:
        return "No quarantined rows: every row reached the ledger."
    lines = [f"{len(rows)} quarantined row(s): the ledger refused them; kept here with why."]
    for r in rows:
        lines.append(f"{r['ts']}  {r['request_id'] or '-'}  {r['kind']}  {r['reason']}")
    return "\n".join(lines)
