"""The shared pieces' cost: ledger writes per second (SQLite vs Postgres) and one
shared budget hold + settle (Postgres), on the Postgres at 127.0.0.1:5432.

Creates a throwaway database and drops it. Short on purpose: the machine is shared.

    .venv/bin/python bench/postgres_ledger.py                 # ~10 s
    .venv/bin/python bench/postgres_ledger.py --rows 50000 --holds 2000
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from observe_cost import entry  # bench/, next to this file

from tollhouse.budgets.book import Budget
from tollhouse.budgets.shared import SharedBudgets
from tollhouse.ledger.store import Location, connect
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing import Pricer

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def rows_per_second(location: Location, rows: int) -> float:
    writer = LedgerWriter(location, Pricer({})).start()
    entries = [entry(i) for i in range(64)]
    start = time.perf_counter()
    for i in range(rows):
        e = entries[i % 64]
        e.request_id = f"b{i}"
        writer.submit(e)
    assert writer.flush(300)
    elapsed = time.perf_counter() - start
    writer.close()
    return rows / elapsed


def hold_latency(url: str, holds: int) -> list[float]:
    budgets = {"acme": Budget(daily=Decimal(10**9), monthly=None, hard=True)}
    shared = SharedBudgets(url, budgets, ttl=600)
    now = datetime.now(UTC)
    out = []
    try:
        for _ in range(holds):
            t = time.perf_counter()
            hold = shared.executor.submit(shared.reserve, "acme", Decimal("0.01"), now).result()
            assert hold is not None
            shared.executor.submit(shared.settle, hold, Decimal("0.005")).result()
            out.append((time.perf_counter() - t) * 1000)
    finally:
        shared.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--holds", type=int, default=500)
    args = parser.parse_args()
    name = f"tollhouse_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        connect(url).close()
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = rows_per_second(Path(tmp) / "l.db", args.rows)
        postgres = rows_per_second(url, args.rows)
        print(f"ledger rows/s, one writer: SQLite {sqlite:,.0f}   Postgres {postgres:,.0f}")
        latencies = sorted(hold_latency(url, args.holds))
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        median = statistics.median(latencies)
        print(f"shared budget hold + settle: p50 {median:.2f} ms  p99 {p99:.2f} ms")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
