"""The ledger writer: migrations recorded, rows priced and committed, WAL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tollhouse.ledger.entry import LedgerEntry
from tollhouse.ledger.migrations import MIGRATIONS
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Pricer
from tollhouse.settings import Price


def entry(n: int, **kw: object) -> LedgerEntry:
    base: dict[str, object] = dict(
        ts=datetime(2026, 11, 20, 12, 0, n % 60, tzinfo=UTC),
        request_id=f"req-{n}",
        project="acme",
        attribution="header",
        dialect="openai-chat",
        status=200,
        stream=False,
        latency_ms=1.5,
        provider="openai",
        pricing_provider="openai",
        model_requested="gpt-4o",
        model_served="gpt-4o-2024-08-06",
        usage=Usage(input_tokens=1000, output_tokens=100, raw={"prompt_tokens": 1000}),
    )
    base.update(kw)
    return LedgerEntry(**base)  # type: ignore[arg-type]


def test_rows_are_priced_and_committed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = LedgerWriter(path, Pricer({}), batch_size=7).start()
    for n in range(50):
        writer.submit(entry(n))
    writer.submit(entry(50, usage=None, status=500))
    writer.submit(entry(51, usage=None, stream=True, incomplete=True))
    assert writer.flush()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 52
    costs = {r[0] for r in conn.execute("SELECT cost_usd FROM requests WHERE id <= 50")}
    assert len(costs) == 1 and Decimal(costs.pop()) > 0
    failed, cut = conn.execute(
        "SELECT cost_usd, price_source FROM requests WHERE request_id IN ('req-50','req-51') "
        "ORDER BY request_id"
    ).fetchall()
    assert failed == ("0", "error") and cut == (None, "no-usage")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m[0] for m in MIGRATIONS]
    writer.close()


def test_reopening_does_not_migrate_twice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    for _ in range(2):
        writer = LedgerWriter(path, Pricer({})).start()
        writer.submit(entry(1, request_id=f"r-{_}"))
        writer.flush()
        writer.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 2


def test_costs_are_exact_decimal_text(tmp_path: Path) -> None:
    price = Price(input=Decimal("0.075"), output=Decimal("0.3"))
    writer = LedgerWriter(tmp_path / "l.db", Pricer({"openai/gpt-4o": price})).start()
    writer.submit(entry(1, usage=Usage(input_tokens=3, output_tokens=1)))
    writer.flush()
    cost = sqlite3.connect(tmp_path / "l.db").execute("SELECT cost_usd FROM requests").fetchone()[0]
    assert cost == "0.000000525"  # never 5.25E-7, never a float
    writer.close()


def test_statements_commit_together_and_report_back(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "ledger.db"
    writer = LedgerWriter(path, Pricer({})).start()
    results: list[bool] = []
    done = threading.Event()

    def report(ok: bool) -> None:
        results.append(ok)
        if len(results) == 2:
            done.set()

    insert = "INSERT INTO trust_cache_lookups (ts, request_id, outcome) VALUES (?, ?, ?)"
    writer.execute([(insert, ("t", "r1", "hit")), (insert, ("t", "r2", "miss"))], report)
    writer.flush()
    writer.execute([(insert, ("t", "r3", "hit")), ("INSERT INTO nowhere VALUES (1)", ())], report)
    assert done.wait(10)
    writer.close()
    assert results == [True, False]
    conn = sqlite3.connect(path)
    ids = [r[0] for r in conn.execute("SELECT request_id FROM trust_cache_lookups ORDER BY id")]
    assert ids == ["r1", "r2"]  # the failed group left nothing behind


def test_one_bad_row_does_not_cost_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = LedgerWriter(path, Pricer({})).start()
    writer.submit(entry(1))
    assert writer.flush()
    for n in (2, 1, 3):  # req-1 again: a unique-key clash in the middle of one batch
        writer.submit(entry(n))
    assert writer.flush()
    conn = sqlite3.connect(path)
    ids = [r[0] for r in conn.execute("SELECT request_id FROM requests ORDER BY id")]
    assert ids == ["req-1", "req-2", "req-3"]
    writer.close()
