"""What the totals trigger costs the ledger's writer: rows per second, trigger on and off.

The writer commits batches of 256 rows (its default); this commits 60,000 sample
rows that way into a fresh SQLite ledger, with the totals trigger (migration 6)
and without it, interleaved for 3 rounds, and prints the medians.

    .venv/bin/python bench/ledger_write_cost.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ledger.test_totals import _row, _sample  # noqa: E402
from tollhouse.ledger.store import connect, transaction  # noqa: E402
from tollhouse.ledger.writer import INSERT  # noqa: E402

ROWS = [_row(r, n) for n, r in enumerate(_sample(60_000))]


def rows_per_second(trigger: bool) -> float:
    with tempfile.TemporaryDirectory() as where:
        conn = connect(Path(where) / "l.db")
        if not trigger:
            conn.execute("DROP TRIGGER requests_totals")
        began = time.perf_counter()
        for i in range(0, len(ROWS), 256):
            with transaction(conn):
                conn.executemany(INSERT, ROWS[i : i + 256])
        took = time.perf_counter() - began
        conn.close()
    return len(ROWS) / took


def main() -> None:
    found: dict[bool, list[float]] = {True: [], False: []}
    for n in range(3):
        for trigger in (True, False) if n % 2 else (False, True):
            found[trigger].append(rows_per_second(trigger))
    for trigger, runs in found.items():
        per_row = 1e6 / statistics.median(runs)
        label = "with totals trigger" if trigger else "without trigger"
        print(f"{label}: {statistics.median(runs):,.0f} rows/s ({per_row:.1f} µs a row)")


if __name__ == "__main__":
    main()
