"""The dashboard's queries, straight against a seeded ledger file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.dashboard.conftest import PRICES, seed_entries
from tollhouse.dashboard import queries
from tollhouse.ledger.store import connect
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing import Pricer
from tollhouse.settings import parse_settings

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


def seeded(tmp_path: Path) -> sqlite3.Connection:
    writer = LedgerWriter(tmp_path / "l.db", Pricer(parse_settings({"prices": PRICES}).prices))
    writer.start()
    for entry in seed_entries(NOW):
        writer.submit(entry)
    writer.flush()
    writer.close()
    conn = connect(tmp_path / "l.db", readonly=True)
    conn.row_factory = sqlite3.Row
    return conn


def test_daily_series_fill_the_gaps_and_keep_exact_totals(tmp_path: Path) -> None:
    conn = seeded(tmp_path)
    found = queries.timeseries(conn, "project", None, None)
    assert found["days"] == [f"2026-11-{d}" for d in (27, 28, 29, 30)] + ["2026-12-01"]
    by = {s["name"]: s for s in found["series"]}
    assert Decimal(by["globex"]["total_usd"]) == Decimal("0.105")
    assert by["acme"]["cost"][-1] == 0.004  # two acme calls today
    assert found["series"][0]["name"] == "globex"  # biggest first


def test_hourly_buckets(tmp_path: Path) -> None:
    conn = seeded(tmp_path)
    found = queries.timeseries(conn, "model", NOW - timedelta(hours=25), None, bucket="hour")
    assert found["days"][0] == "2026-11-30T12" and found["days"][-1] == "2026-12-01T12"
    assert len(found["days"]) == 25  # every hour, spend or not


def test_tags_recent_filters_and_project_report(tmp_path: Path) -> None:
    conn = seeded(tmp_path)
    tags = queries.tags(conn, "purpose", None, None)
    bugfix = next(v for v in tags["values"] if v["value"] == "bugfix")
    assert bugfix["requests"] == 4 and Decimal(bugfix["cost_usd"]) == Decimal("0.008")
    assert tags["keys"] == ["purpose"]
    assert len(queries.recent(conn, {"tag": "purpose=bugfix"}, 100)) == 4
    assert len(queries.recent(conn, {"model": "claude-sonnet-4-5", "trust": "degraded"}, 100)) == 1
    assert len(queries.recent(conn, {}, 3)) == 3
    report = queries.project_report(conn, "acme", None, None)
    assert (report["requests"], Decimal(report["cost_usd"])) == (10, Decimal("0.02"))
    assert set(report["tags"]) == {"purpose"}
    [unpriced] = queries.unpriced(conn, None, None)
    assert (unpriced["provider"], unpriced["model"], unpriced["requests"]) == (
        "local",
        "mystery-1",
        1,
    )


def test_failed_calls_are_counted_apart_from_answered_ones(tmp_path: Path) -> None:
    """A 429 or a gateway 400 is a request, and an error: the overview and report say so."""
    from dataclasses import replace

    from tollhouse.ledger.report import summarize

    entries = seed_entries(NOW)
    failed = [
        replace(entries[0], request_id="f1", status=429, usage=None, error="rate_limit"),
        replace(entries[0], request_id="f2", status=400, usage=None, error="gateway:bad"),
        replace(entries[0], request_id="f3", status=499, error="client_disconnected"),
    ]
    writer = LedgerWriter(tmp_path / "l.db", Pricer(parse_settings({"prices": PRICES}).prices))
    writer.start()
    for entry in [*entries, *failed]:
        writer.submit(entry)
    writer.flush()
    writer.close()
    conn = connect(tmp_path / "l.db", readonly=True)
    assert queries.overview(conn, None, None)["errors"] == 3
    by_status = {r["status"]: r for r in summarize(conn, ["status"])}
    assert set(by_status) == {"200", "400", "429", "499"}
    assert by_status["429"]["errors"] == 1 and by_status["200"]["errors"] == 0
    # A refused call is billed nothing by the provider: a true $0, not an unknown one.
    assert Decimal(by_status["429"]["cost_usd"]) == 0
    assert by_status["429"]["unmetered_requests"] == by_status["429"]["unpriced_requests"] == 0


def test_requests_page_by_keyset_at_any_depth(tmp_path: Path) -> None:
    from tests.ledger.test_totals import _sample, insert

    conn = connect(tmp_path / "k.db")
    rows = _sample(1000)
    for n, r in enumerate(rows):
        r["at"] = n // 3  # three rows share each timestamp: ties break by id
    insert(conn, rows)
    conn.row_factory = sqlite3.Row
    seen: list[str] = []
    filters: dict[str, str] = {}
    while True:
        page = queries.recent(conn, filters, 70)
        if not page:
            break
        seen += [r["request_id"] for r in page]
        filters = {"before": page[-1]["cursor"]}
    assert seen == [f"req-{n}" for n in reversed(range(1000))]  # each once, newest first
    deep = queries.recent(conn, {"before": page_cursor(conn, "req-12")}, 5)
    assert [r["request_id"] for r in deep] == [f"req-{n}" for n in (11, 10, 9, 8, 7)]
    acme = queries.recent(conn, {"project": "acme", "before": page_cursor(conn, "req-12")}, 3)
    assert [r["request_id"] for r in acme] == ["req-10", "req-8", "req-6"]


def page_cursor(conn: sqlite3.Connection, request_id: str) -> str:
    ts, row_id = conn.execute(
        "SELECT ts, id FROM requests WHERE request_id = ?", (request_id,)
    ).fetchone()
    return f"{ts}~{row_id}"
