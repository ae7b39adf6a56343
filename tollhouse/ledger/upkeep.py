"""Keeping the derived totals true: rebuild them from the rows, verify them, prune rows.

>>> rebuild(conn, progress=lambda done, total: ...)   # every day recomputed from the rows
>>> verify(conn)                                      # [] when totals == rows
>>> prune(conn, keep_days=400)                        # raw rows older go; totals stay

A day is rebuilt (or checked) in one transaction; on Postgres the rows table is
locked against inserts meanwhile, so a row landing mid-rebuild is counted once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tollhouse.ledger import totals as t
from tollhouse.ledger.store import transaction

Progress = Callable[[int, int], None]  # (days done, days in all)
CHUNK_DAYS = 7  # days per transaction: short enough not to stall the gateway's writer


@dataclass(frozen=True)
class Mismatch:
    """A totals row that differs from the sum of its rows."""

    key: tuple[str, ...]  # day, project, model, provider, tags
    totals: tuple[Any, ...] | None  # None: the totals lack it
    rows: tuple[Any, ...] | None  # None: no rows for it

    def __str__(self) -> str:
        names = (*t.COUNTS, *t.COST, "cost_places")
        if self.totals is None:
            return f"{self.key}: the rows add up to {_named(names, self.rows)}; the totals lack it"
        if self.rows is None:
            return f"{self.key}: the totals say {_named(names, self.totals)}; no rows"
        diff = {n: (a, b) for n, a, b in zip(names, self.totals, self.rows, strict=True) if a != b}
        return f"{self.key}: totals ≠ rows in " + ", ".join(
            f"{n} ({a} ≠ {b})" for n, (a, b) in diff.items()
        )


def _named(names: tuple[str, ...], values: tuple[Any, ...] | None) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(names, values or (), strict=False) if v)


def _postgres(conn: Any) -> bool:
    return getattr(conn, "dialect", "sqlite") == "postgres"


def _summed_rows(postgres: bool) -> str:
    """SELECT the totals rows the raw rows of [?, ?) add up to, carries normalised."""
    values = t.row_values("", postgres)
    inner = [f"{t.DIMENSIONS[d]} AS {d}" for d in t.DIMENSIONS]
    inner += [f"SUM({values[c]}) AS {c}" for c in (*t.COUNTS, *t.COST)]
    inner.append(f"MAX({values['cost_places']}) AS cost_places")
    group = ", ".join(t.DIMENSIONS.values())
    return _normalised(
        postgres, list(t.DIMENSIONS), inner, f"requests WHERE ts >= ? AND ts < ? GROUP BY {group}"
    )


def _months_from_days(postgres: bool) -> str:
    """SELECT the totals_month rows the totals_day rows add up to."""
    inner = ["substr(day, 1, 7) AS month", *(f"{d} AS {d}" for d in t.MONTH_DIMENSIONS[1:])]
    inner += [f"SUM({c}) AS {c}" for c in (*t.COUNTS, *t.COST)]
    inner.append("MAX(cost_places) AS cost_places")
    group = ", ".join(["substr(day, 1, 7)", *t.MONTH_DIMENSIONS[1:]])
    return _normalised(postgres, list(t.MONTH_DIMENSIONS), inner, f"totals_day GROUP BY {group}")


def _normalised(postgres: bool, dims: list[str], inner: list[str], source: str) -> str:
    """Sums with their cost carried: atto and quecto each below 10^12."""
    if postgres:  # SUM of BIGINT is NUMERIC there: back to integers, divided as integers
        inner = [
            f"CAST({term.rsplit(' AS ', 1)[0]} AS BIGINT) AS {term.rsplit(' AS ', 1)[1]}"
            if term.startswith("SUM(")
            else term
            for term in inner
        ]
    carry = t.CARRY
    atto = f"(cost_atto + cost_quecto / {carry})"
    outer = [*dims, *t.COUNTS]
    outer += [
        f"cost_micros + {atto} / {carry}",
        f"{atto} % {carry}",
        f"cost_quecto % {carry}",
        "cost_places",
    ]
    return f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {source}) s"


TOTALS_COLUMNS = (*t.DIMENSIONS, *t.COUNTS, *t.COST, "cost_places")
MONTH_COLUMNS = (*t.MONTH_DIMENSIONS, *t.COUNTS, *t.COST, "cost_places")


def _chunks(conn: Any) -> tuple[list[tuple[str, str]], str | None]:
    """The day ranges holding raw rows, and the retention boundary."""
    rows_from = t.state(conn)["rows_from"]
    span = t.row_days(conn, rows_from)
    if span is None:
        return [], rows_from
    every = list(t.days(*span))
    chunks = [
        (every[i], t.next_day(every[min(i + CHUNK_DAYS, len(every)) - 1]))
        for i in range(0, len(every), CHUNK_DAYS)
    ]
    return chunks, rows_from


def rebuild(conn: Any, progress: Progress | None = None) -> int:
    """Recompute ``totals_day`` from the rows (days before retention's cut are kept).

    Returns how many rows were counted.
    """
    postgres = _postgres(conn)
    chunks, rows_from = _chunks(conn)
    with transaction(conn):  # marked behind until every day is redone
        t.set_state(conn, "behind")
        low = rows_from or ""
        if chunks:
            conn.execute(
                "DELETE FROM totals_day WHERE day >= ? AND (day < ? OR day >= ?)",
                (low, chunks[0][0], chunks[-1][1]),
            )
        else:
            conn.execute("DELETE FROM totals_day WHERE day >= ?", (low,))
    insert = f"INSERT INTO totals_day ({', '.join(TOTALS_COLUMNS)}) {_summed_rows(postgres)}"
    counted, total_days = 0, _days_in(chunks)
    for n, (first, end) in enumerate(chunks):
        with transaction(conn):
            if postgres:  # no insert (and its trigger) between our delete and our sum
                conn.execute("LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE")
            conn.execute("DELETE FROM totals_day WHERE day >= ? AND day < ?", (first, end))
            conn.execute(insert, (first, end))
        counted += _rows_in(conn, first, end)
        if progress is not None:
            progress(min((n + 1) * CHUNK_DAYS, total_days), total_days)
    with transaction(conn):  # the months, from every day's totals (pruned days' too)
        if postgres:
            conn.execute("LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("DELETE FROM totals_month")
        conn.execute(
            f"INSERT INTO totals_month ({', '.join(MONTH_COLUMNS)}) {_months_from_days(postgres)}"
        )
        t.set_state(conn, "current")
    return counted


def _days_in(chunks: list[tuple[str, str]]) -> int:
    if not chunks:
        return 0
    return len(list(t.days(chunks[0][0], chunks[-1][1]))) - 1


def _rows_in(conn: Any, first: str, end: str) -> int:
    return int(
        conn.execute(
            "SELECT COALESCE(SUM(requests), 0) FROM totals_day WHERE day >= ? AND day < ?",
            (first, end),
        ).fetchone()[0]
    )


def verify(conn: Any, progress: Progress | None = None, limit: int = 50) -> list[Mismatch]:
    """Every totals row against the sum of its rows; the first ``limit`` differences.

    Days before retention's cut have no rows left to check against and are skipped.
    """
    postgres = _postgres(conn)
    chunks, rows_from = _chunks(conn)
    found: list[Mismatch] = []
    width = len(t.DIMENSIONS)
    summed = _summed_rows(postgres)
    for n, (first, end) in enumerate(chunks):
        rows = {tuple(r[:width]): tuple(r[width:]) for r in conn.execute(summed, (first, end))}
        kept = conn.execute(
            f"SELECT {', '.join(TOTALS_COLUMNS)} FROM totals_day WHERE day >= ? AND day < ?",
            (first, end),
        ).fetchall()
        have = {tuple(r[:width]): tuple(r[width:]) for r in kept}
        for key in sorted(set(rows) | set(have)):
            a, b = have.get(key), rows.get(key)
            if a != b:
                found.append(Mismatch(key, a, b))
        if progress is not None:
            progress(min((n + 1) * CHUNK_DAYS, _days_in(chunks)), _days_in(chunks))
        if len(found) >= limit:
            return found[:limit]
    low, bounds = rows_from or "", (chunks[0][0], chunks[-1][1]) if chunks else ("", "")
    stray = conn.execute(
        f"SELECT {', '.join(TOTALS_COLUMNS)} FROM totals_day WHERE day >= ? "
        "AND (day < ? OR day >= ?)",
        (low, *bounds) if chunks else (low, "", ""),
    ).fetchall()
    found += [Mismatch(tuple(r[:width]), tuple(r[width:]), None) for r in stray]
    return (found + _verify_months(conn, postgres))[:limit]


def _verify_months(conn: Any, postgres: bool) -> list[Mismatch]:
    """Every totals_month row against the sum of its days' totals."""
    width = len(t.MONTH_DIMENSIONS)
    days = {tuple(r[:width]): tuple(r[width:]) for r in conn.execute(_months_from_days(postgres))}
    kept = conn.execute(f"SELECT {', '.join(MONTH_COLUMNS)} FROM totals_month").fetchall()
    have = {tuple(r[:width]): tuple(r[width:]) for r in kept}
    return [
        Mismatch(key, have.get(key), days.get(key))
        for key in sorted(set(days) | set(have))
        if have.get(key) != days.get(key)
    ]


def prune(conn: Any, keep_days: int, now: datetime | None = None) -> tuple[int, str]:
    """Delete raw rows (and their attempts) from before the UTC day ``keep_days`` ago.

    The totals keep every day; reports read the pruned days whole from them. Returns
    the rows deleted and the first day whose rows are kept.
    """
    now = now or datetime.now(UTC)
    cut = (now.astimezone(UTC) - timedelta(days=keep_days)).date().isoformat()
    with transaction(conn):
        before = t.state(conn)["rows_from"]
        cut = max(cut, before or "")
        deleted = conn.execute("DELETE FROM requests WHERE ts < ?", (cut,)).rowcount
        conn.execute("DELETE FROM attempts WHERE ts < ?", (cut,))
        current = t.state(conn)["state"]
        t.set_state(conn, str(current), cut, keep=False)
    return int(deleted), cut


def compact(conn: Any) -> None:
    """Give the space of deleted rows back to the file system (SQLite) or the table (Postgres)."""
    conn.execute("VACUUM")
