"""What the dashboard shows, read from the ledger: plain functions, connection in, JSON out.

Money stays exact (decimal strings) for tables; charts get floats next to them.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tollhouse.ledger import totals as derived
from tollhouse.ledger.report import (
    ReportError,
    parse_time,
    quarantined,
    summarize,
    summarize_each,
    time_window,
)

GROUPS = ("project", "model", "provider")
TOP = 10
RECENT_COLUMNS = (
    "ts, request_id, project, provider, COALESCE(model_served, model_requested) AS model, "
    "status, stream, incomplete, input_tokens, output_tokens, cost_usd, price_source, "
    "latency_ms, trust, attempts, error, error_class, tags"
)
MAX_RECENT = 500


def overview(
    conn: sqlite3.Connection, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Totals and the top projects, models and providers of a period."""
    tops = summarize_each(conn, GROUPS, since, until)
    return {
        **_totals(tops["project"]),
        "quarantined": len(quarantined(conn, since, until)),
        "top": {g: [_brief(r, g) for r in found[:TOP]] for g, found in tops.items()},
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, cost, tokens and unpriced calls over a period's summary rows."""
    total = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    return {
        "requests": sum(r["requests"] for r in rows),
        "errors": sum(r["errors"] for r in rows),
        "cost_usd": format(total, "f"),
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "unpriced_requests": sum(r["unpriced_requests"] for r in rows),
    }


def _brief(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "name": row[key],
        "requests": row["requests"],
        "cost_usd": row["cost_usd"],
        "unpriced_requests": row["unpriced_requests"],
    }


def timeseries(
    conn: sqlite3.Connection,
    by: str,
    since: datetime | None,
    until: datetime | None,
    project: str | None = None,
    bucket: str = "day",
) -> dict[str, Any]:
    """Cost per UTC day (or hour) and ``by`` group, buckets without spend filled with 0.

    ``days`` holds the buckets: '2026-12-01', or '2026-12-01T13' by the hour.
    """
    summed = derived.group(conn, [bucket, by], since, until, project, lean=True)
    if summed is None:  # hourly, or totals behind: the rows
        rows = summarize(conn, [bucket, by], since, until, project)
    else:
        rows = [
            {bucket: k[0], by: k[1], "cost_usd": format(s.cost(), "f")} for k, s in summed.items()
        ]
    days = sorted({r[bucket] for r in rows})
    if days:
        days = _every(days[0], days[-1], hourly=bucket == "hour")
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[float]] = {}
    exact: dict[str, Decimal] = {}
    for r in rows:
        values = series.setdefault(r[by], [0.0] * len(days))
        values[index[r[bucket]]] += float(r["cost_usd"])
        exact[r[by]] = exact.get(r[by], Decimal(0)) + Decimal(r["cost_usd"])
    names = sorted(series, key=lambda n: (-exact[n], n))
    return {
        "by": by,
        "bucket": bucket,
        "days": days,
        "series": [
            {"name": n, "cost": series[n], "total_usd": format(exact[n], "f")} for n in names
        ],
    }


def _every(first: str, last: str, *, hourly: bool) -> list[str]:
    if not hourly:
        start, end = date.fromisoformat(first), date.fromisoformat(last)
        return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    begin, stop = datetime.fromisoformat(first + ":00"), datetime.fromisoformat(last + ":00")
    hours = int((stop - begin).total_seconds() // 3600) + 1
    return [(begin + timedelta(hours=i)).strftime("%Y-%m-%dT%H") for i in range(hours)]


def tag_keys(
    conn: sqlite3.Connection,
    since: datetime | None,
    until: datetime | None,
    project: str | None = None,
) -> list[str]:
    found = derived.tag_sets(conn, since, until, project)
    if found is None:  # totals behind: read the rows
        where, params = time_window(since, until)
        if project is not None:
            where, params = f"{where} AND project = ?", [*params, project]
        rows = conn.execute(f"SELECT DISTINCT tags FROM requests WHERE {where}", params)
        found = {tags for (tags,) in rows}
    keys: set[str] = set()
    for tags in found:
        keys.update(json.loads(tags or "{}"))
    return sorted(keys)


def tags(
    conn: sqlite3.Connection,
    key: str,
    since: datetime | None,
    until: datetime | None,
    project: str | None = None,
) -> dict[str, Any]:
    """Requests and cost per value of tag ``key``, with their shares of the period."""
    rows = summarize(conn, [f"tag:{key}"], since, until, project)
    total_cost = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    total_requests = sum(r["requests"] for r in rows)
    values = [
        {
            "value": r[f"tag:{key}"],
            "requests": r["requests"],
            "cost_usd": r["cost_usd"],
            "request_share": r["requests"] / total_requests if total_requests else None,
            "cost_share": float(Decimal(r["cost_usd"]) / total_cost) if total_cost else None,
        }
        for r in rows
    ]
    return {"key": key, "keys": tag_keys(conn, since, until), "values": values}


def unpriced(
    conn: sqlite3.Connection, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    """Calls with usage but no price, per provider and model: what to add to [prices]."""
    where, params = time_window(since, until)
    rows = conn.execute(
        "SELECT provider, COALESCE(model_served, model_requested) AS model, count(*) AS requests, "
        "COALESCE(sum(input_tokens), 0) AS input_tokens, "
        "COALESCE(sum(output_tokens), 0) AS output_tokens, min(ts) AS first, max(ts) AS last "
        f"FROM requests WHERE price_source IN ('unpriced', 'odd-usage') AND {where} "
        "GROUP BY 1, 2 ORDER BY requests DESC",
        params,
    )
    return [dict(r) for r in rows]


def recent(conn: sqlite3.Connection, filters: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """The latest requests, newest first, filtered by exact column values and a tag.

    Pages by keyset: each row carries a ``cursor``; ``filters["before"]`` set to the last
    row's cursor gives the next (older) page, as fast at any depth as the first.
    """
    where, params = time_window(parse_time(filters.get("since")), parse_time(filters.get("until")))
    clauses = [where, *_before(filters.get("before"), params)]
    for name, column in (
        ("project", "project"),
        ("provider", "provider"),
        ("model", "COALESCE(model_served, model_requested)"),
        ("trust", "trust"),
    ):
        if filters.get(name):
            clauses.append(f"{column} = ?")
            params.append(filters[name])
    status = filters.get("status")
    if status == "ok":
        clauses.append("status < 400")
    elif status == "error":
        clauses.append("status >= 400")
    if filters.get("tag") and "=" in filters["tag"]:
        name, _, value = filters["tag"].partition("=")
        if getattr(conn, "dialect", "sqlite") == "postgres":
            clauses.append("(tags::jsonb ->> ?) = ?")
            params += [name.strip().lower(), value.strip()]
        else:
            clauses.append("json_extract(tags, ?) = ?")
            params += [f'$."{name.strip().lower()}"', value.strip()]
    sql = (
        f"SELECT {RECENT_COLUMNS}, id AS row_id FROM requests WHERE {' AND '.join(clauses)} "
        f"ORDER BY ts DESC, id DESC LIMIT {max(1, min(limit, MAX_RECENT))}"
    )
    out = []
    for r in conn.execute(sql, params):
        row = dict(r)
        row["cursor"] = f"{row['ts']}~{row.pop('row_id')}"
        out.append(row)
    return out


def _before(cursor: str | None, params: list[Any]) -> list[str]:
    """The keyset clause for rows older than ``cursor`` ('<ts>~<id>'), its values added."""
    if not cursor:
        return []
    ts, _, row_id = cursor.rpartition("~")
    if not ts or not row_id.isdigit():
        raise ReportError(f"before: not a cursor: {cursor!r}; use a row's cursor")
    params += [ts, ts, int(row_id)]
    return ["ts <= ? AND (ts < ? OR id < ?)"]


def project_report(
    conn: sqlite3.Connection, name: str, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Everything a client report for one project needs."""
    by_model = summarize(conn, ["model", "provider"], since, until, name)
    keys = tag_keys(conn, None, None, name)  # every tag the project ever used
    return {
        "project": name,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        **_totals(by_model),
        "by_model": by_model,
        "daily": timeseries(conn, "model", since, until, name),
        "tags": {k: tags(conn, k, since, until, name)["values"] for k in keys},
    }
