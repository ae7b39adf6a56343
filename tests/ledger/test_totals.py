"""Derived totals: equal to the rows after any writes, rebuilt, verified, kept past retention.

Every test runs on SQLite and on Postgres (which must answer under CI=true).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollhouse.ledger import totals, upkeep
from tollhouse.ledger.report import summarize, summarize_each
from tollhouse.ledger.store import connect, transaction
from tollhouse.ledger.writer import COLUMNS, INSERT

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def conn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        location: Any = tmp_path / "l.db"
    else:
        location = request.getfixturevalue("postgres_url")
    c = connect(location)
    try:
        yield c
    finally:
        c.close()


def _clear(conn: Any) -> None:
    with transaction(conn):
        for table in ("requests", "attempts", "totals_day", "totals_month"):
            conn.execute(f"DELETE FROM {table}")
        totals.set_state(conn, "current", None, keep=False)


# A cost as the writer stores it: a plain decimal, or none. Up to 20 decimals here: the
# rows' Python sum (what the totals are checked against) rounds past 28 digits.
costs = st.one_of(
    st.none(),
    st.decimals(min_value=0, max_value=10**6, places=20).map(lambda d: format(d, "f")),
    st.decimals(min_value=0, max_value=1, places=8).map(lambda d: format(d, "f")),
    st.sampled_from(["0", "0.00", "12", "0.00000000000000000001"]),
)
rows = st.fixed_dictionaries(
    {
        "at": st.integers(0, 80 * 24 * 3600 - 1),
        "project": st.sampled_from(["acme", "globex", "a'b"]),
        "model_served": st.sampled_from([None, "gpt-4o", "claude"]),
        "model_requested": st.sampled_from([None, "gpt-4o", "alias"]),
        "provider": st.sampled_from([None, "openai", "anthropic"]),
        "tags": st.sampled_from([{}, {"purpose": "a"}, {"purpose": "b", "team": "x"}]),
        "status": st.sampled_from([200, 429, 500, 499]),
        "cost": costs,
        "price_source": st.sampled_from(["genai-prices", "unpriced", "odd-usage", "no-usage"]),
        "tokens": st.lists(st.one_of(st.none(), st.integers(0, 10**9)), min_size=5, max_size=5),
    }
)


def insert(conn: Any, found: list[dict[str, Any]], first: int = 0) -> None:
    with transaction(conn):
        conn.executemany(INSERT, [_row(r, first + n) for n, r in enumerate(found)])


def _row(r: dict[str, Any], n: int) -> tuple[Any, ...]:
    ts = (START + timedelta(seconds=r["at"])).isoformat(timespec="microseconds")
    i, c, w, o, reason = r["tokens"]
    return (
        ts, f"req-{n}", r["project"], "header", None, json.dumps(r["tags"], sort_keys=True),
        "openai", r["provider"], r["model_requested"], r["model_served"], r["status"], 0, 0,
        None, i, c, w, None, o, reason, r["cost"], r["price_source"], 1.0, None, None, None,
        None, 0, 0.0, None, *_LATER,
    )  # fmt: skip


# Columns later migrations added to the writer's row (git context...): NULL here.
_LATER = (None,) * (len(COLUMNS.split(",")) - 30)


BYS = [["project"], ["model", "provider"], ["day"], ["tag:purpose"], ["project", "tag:team"]]
moments = st.integers(0, 90 * 24 * 3600).map(lambda s: START + timedelta(seconds=s))
windows = st.tuples(st.one_of(st.none(), moments), st.one_of(st.none(), moments))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(rows, max_size=30), min_size=1, max_size=4), window=windows)
def test_totals_equal_rows_after_random_writes(
    conn: Any, batches: list[list[dict[str, Any]]], window: tuple[Any, Any]
) -> None:
    _clear(conn)
    n = 0
    for batch in batches:  # several transactions, landing on the same totals rows
        insert(conn, batch, n)
        n += len(batch)
    assert upkeep.verify(conn) == []
    since, until = window
    for by in BYS:
        assert summarize(conn, by, since, until) == summarize(
            conn, by, since, until, from_rows=True
        ), by
    assert summarize(conn, ["project"], since, until, "acme") == summarize(
        conn, ["project"], since, until, "acme", from_rows=True
    )
    each = summarize_each(conn, ["project", "model", "provider"], since, until)
    for key, found in each.items():
        assert found == summarize(conn, [key], since, until, from_rows=True), key


def _sample(count: int) -> list[dict[str, Any]]:
    return [
        {
            "at": (n * 7919) % (6 * 24 * 3600),
            "project": ("acme", "globex")[n % 2],
            "model_served": ("gpt-4o", None)[n % 3 == 0],
            "model_requested": "alias",
            "provider": "openai",
            "tags": {"purpose": "abc"[n % 3]},
            "status": (200, 500)[n % 5 == 0],
            "cost": None if n % 7 == 0 else f"0.{n:07d}25",
            "price_source": "unpriced" if n % 7 == 0 else "genai-prices",
            "tokens": [n, None, 1, 2 * n, 0],
        }
        for n in range(count)
    ]


def test_verify_finds_a_hand_edited_row_and_rebuild_mends_it(conn: Any) -> None:
    insert(conn, _sample(200))
    assert upkeep.verify(conn) == []
    before = summarize(conn, ["project", "model"])
    conn.execute("UPDATE requests SET cost_usd = '5' WHERE request_id = 'req-3'")
    found = upkeep.verify(conn)
    assert len(found) == 1
    assert found[0].key[1] == "globex" and "cost_micros" in str(found[0])
    conn.execute("UPDATE totals_day SET requests = requests + 1 WHERE project = 'acme'")
    assert len(upkeep.verify(conn)) > 1
    seen: list[tuple[int, int]] = []
    assert upkeep.rebuild(conn, lambda done, total: seen.append((done, total))) == 200
    assert upkeep.verify(conn) == []
    assert seen and seen[-1][0] == seen[-1][1]
    after = summarize(conn, ["project", "model"])
    assert after == summarize(conn, ["project", "model"], from_rows=True)
    assert after != before  # the edited cost now counts


def test_a_ledger_written_before_the_totals_is_behind_until_rebuilt(conn: Any) -> None:
    insert(conn, _sample(50))
    with transaction(conn):  # as migration 6 leaves a ledger that already had rows
        conn.execute("DELETE FROM totals_day")
        conn.execute("DELETE FROM totals_month")
        totals.set_state(conn, "behind")
    assert totals.state(conn)["state"] == "behind"
    # Reports don't trust totals that are behind: they read the rows.
    assert summarize(conn, ["project"]) == summarize(conn, ["project"], from_rows=True)
    assert summarize(conn, ["project"])[0]["requests"] > 0
    upkeep.rebuild(conn)
    assert totals.state(conn)["state"] == "current"
    assert upkeep.verify(conn) == []


def test_retention_prunes_rows_and_keeps_totals(conn: Any) -> None:
    insert(conn, _sample(300))
    whole = summarize(conn, ["project", "day"])
    now = START + timedelta(days=6, hours=5)
    deleted, cut = upkeep.prune(conn, keep_days=3, now=now)
    assert cut == "2026-01-04"
    assert deleted == sum(r["requests"] for r in whole if r["day"] < cut)
    assert conn.execute("SELECT min(ts) FROM requests").fetchone()[0] >= cut
    assert summarize(conn, ["project", "day"]) == whole  # totals keep every day
    assert upkeep.verify(conn) == []  # the kept days still match their rows
    upkeep.rebuild(conn)  # a rebuild keeps the pruned days' totals
    assert summarize(conn, ["project", "day"]) == whole
    # A window starting inside a pruned day reads that day whole from the totals.
    since = START + timedelta(days=1, hours=12)
    by_day = {r["day"]: r for r in summarize(conn, ["day"], since)}
    assert by_day["2026-01-02"]["requests"] == sum(
        r["requests"] for r in whole if r["day"] == "2026-01-02"
    )


def test_plan_splits_a_window_into_months_days_and_edges() -> None:
    since = datetime(2026, 1, 1, 13, tzinfo=UTC)
    until = datetime(2026, 1, 5, 6, tzinfo=UTC)
    split = totals.plan(since, until)
    assert split.months is None and split.days == [("2026-01-02", "2026-01-05")]
    assert [e[0][:13] for e in split.edges] == ["2026-01-01T13", "2026-01-05"]
    inside = totals.plan(since, since + timedelta(hours=2))
    assert inside.days == [] and len(inside.edges) == 1
    assert totals.plan(None, None) == totals.Plan((None, None), [], [])
    year = totals.plan(since, datetime(2026, 12, 20, 1, tzinfo=UTC))
    assert year.months == ("2026-02", "2026-12")
    assert year.days == [("2026-01-02", "2026-02-01"), ("2026-12-01", "2026-12-20")]
    assert len(year.edges) == 2
    assert totals.plan(datetime(2025, 12, 1, tzinfo=UTC), None).months == ("2025-12", None)
    by_day = totals.plan(since, datetime(2026, 12, 20, tzinfo=UTC), monthly=False)
    assert by_day.months is None and by_day.days == [("2026-01-02", "2026-12-20")]


def test_thirty_decimals_sum_exactly(conn: Any) -> None:
    tiny = "0.000000000000000000000000000001"
    found = _sample(3)
    for r, cost in zip(
        found,
        (tiny, "999999.999999999999999999999999", "0.000000000000000000000000000001"),
        strict=True,
    ):
        r.update(project="acme", at=0, cost=cost, price_source="genai-prices")
    insert(conn, found)
    (row,) = summarize(conn, ["project"])
    assert row["cost_usd"] == "999999.999999999999999999999999000002"


def test_the_writer_says_at_start_when_totals_are_behind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tollhouse.ledger.writer import LedgerWriter
    from tollhouse.pricing import Pricer

    c = connect(tmp_path / "l.db")
    insert(c, _sample(5))
    with transaction(c):
        totals.set_state(c, "behind")
    c.close()
    writer = LedgerWriter(tmp_path / "l.db", Pricer({})).start()
    writer.close()
    assert writer.totals_behind and "tollhouse ledger rebuild" in caplog.text
    c = connect(tmp_path / "l.db")
    upkeep.rebuild(c)
    c.close()
    writer = LedgerWriter(tmp_path / "l.db", Pricer({})).start()
    writer.close()
    assert not writer.totals_behind


def test_migration_6_on_a_ledger_with_rows_marks_the_totals_behind(conn: Any) -> None:
    from tollhouse.ledger.migrations import migrate

    postgres = getattr(conn, "dialect", "sqlite") == "postgres"
    with transaction(conn):  # back to version 5, as an older tollhouse left it
        conn.execute("DROP TRIGGER requests_totals" + (" ON requests" if postgres else ""))
        if postgres:
            conn.execute("DROP FUNCTION tollhouse_requests_totals()")
        for table in ("totals_day", "totals_month", "derived_tables"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX requests_unpriced")
        conn.execute("DELETE FROM schema_migrations WHERE version = 6")
    insert(conn, _sample(30))
    migrate(conn)
    assert totals.state(conn)["state"] == "behind"
    assert conn.execute("SELECT count(*) FROM totals_day").fetchone()[0] == 0
    upkeep.rebuild(conn)
    assert upkeep.verify(conn) == []
    assert summarize(conn, ["project"]) == summarize(conn, ["project"], from_rows=True)


def test_a_replayed_row_already_written_is_counted_once(conn: Any) -> None:
    from tollhouse.ledger.writer import REPLAY

    found = [_row(r, n) for n, r in enumerate(_sample(20))]
    for _ in range(2):  # a journal replayed after a crash that came after the commit
        with transaction(conn):
            conn.executemany(REPLAY, found)
    assert sum(r["requests"] for r in summarize(conn, ["project"])) == 20
    assert upkeep.verify(conn) == []
