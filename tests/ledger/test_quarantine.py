"""One row never blocks the ledger: normalised at the edge, else quarantined with its reason.

A row the database refuses is kept aside (the quarantine table, a metric, the
report); the rest of its batch, the other trust statement groups, and journal
replay at the next start all go on.
"""

from __future__ import annotations

import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tests.ledger.test_writer import entry
from tollhouse.cli.main import cli
from tollhouse.ledger.entry import normalise, to_facts
from tollhouse.ledger.journal import Journal
from tollhouse.ledger.store import connect
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Pricer

POISON = """
CREATE TRIGGER poison BEFORE INSERT ON requests WHEN NEW.project = 'poison'
BEGIN SELECT RAISE(ABORT, 'this row is poison'); END;
"""


def poisoned(path: Path) -> None:
    """A ledger that refuses one project's rows, as a real database refuses a bad value."""
    conn = connect(path)
    conn.executescript(POISON)
    conn.close()


def rows(path: Path, table: str = "requests") -> list[sqlite3.Row]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(f"SELECT * FROM {table} ORDER BY id"))


def test_a_refused_row_is_quarantined_and_its_batch_still_lands(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    poisoned(path)
    writer = LedgerWriter(path, Pricer({})).start()
    for n in range(20):
        writer.submit(entry(n, project="poison" if n == 7 else "acme"))
    assert writer.flush()
    assert len(rows(path)) == 19 and writer.written == 19
    kept = rows(path, "quarantine")
    assert [(q["request_id"], q["kind"]) for q in kept] == [("req-7", "request")]
    assert "this row is poison" in kept[0]["reason"] and "'poison'" in kept[0]["content"]
    assert writer.quarantined == 1
    writer.submit(entry(99))  # and the writer keeps writing
    assert writer.flush() and len(rows(path)) == 20
    writer.close()


def test_one_bad_statement_group_does_not_fail_the_others(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = LedgerWriter(path, Pricer({})).start()
    answers: dict[str, bool] = {}
    done = threading.Event()

    def report(name: str) -> object:
        def record(ok: bool) -> None:
            answers[name] = ok
            if len(answers) == 3:
                done.set()

        return record

    make = "CREATE TABLE IF NOT EXISTS claims (k TEXT PRIMARY KEY)"
    writer.execute([(make, ())], report("setup"))
    assert writer.flush()
    # Three groups land in one batch: the middle one can't be written.
    writer.execute([("INSERT INTO claims VALUES (?)", ("other-project",))], report("a"))
    writer.execute([("INSERT INTO nowhere VALUES (?)", ("\udcff",))], report("bad"))
    writer.execute([("INSERT INTO claims VALUES (?)", ("third",))], report("b"))
    assert done.wait(10) and writer.flush()
    assert answers == {"setup": True, "a": True, "bad": False, "b": True}
    with sqlite3.connect(path) as conn:
        assert {r[0] for r in conn.execute("SELECT k FROM claims")} == {"other-project", "third"}
    assert [q["kind"] for q in rows(path, "quarantine")] == ["statements"]
    writer.close()


def test_journal_replay_goes_on_past_a_row_the_ledger_refuses(tmp_path: Path) -> None:
    """A crash left rows in the journal, one of which the ledger refuses: the restart works,
    the others are replayed, the bad one is quarantined."""
    path, journal_dir = tmp_path / "ledger.db", tmp_path / "journal"
    poisoned(path)
    journal = Journal(journal_dir).open()
    for n in range(5):
        journal.append(to_facts(entry(n, project="poison" if n == 2 else "acme")))
    journal.append(("not", "an", "entry"))  # a record no version of tollhouse wrote
    journal.close(delete=False)  # what kill -9 leaves
    writer = LedgerWriter(path, Pricer({}), journal=journal_dir).start()  # doesn't raise
    assert sorted(r["request_id"] for r in rows(path)) == ["req-0", "req-1", "req-3", "req-4"]
    kinds = sorted(q["kind"] for q in rows(path, "quarantine"))
    assert kinds == ["journal", "request"]
    writer.close()


def test_text_that_is_not_utf8_is_written_as_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = LedgerWriter(path, Pricer({}), journal=tmp_path / "journal").start()
    bad = b"acme\xff".decode("utf-8", "surrogateescape")
    e = entry(1, project=bad, tags={bad: bad}, process_name="x\x00y", upstream_id="\ud800")
    sealed = writer.seal(e)  # journaled as it came
    assert sealed is not None
    writer.submit_sealed(sealed)
    assert writer.flush()
    (row,) = rows(path)
    assert row["project"] == "acme\ufffd" and row["tags"] == '{"acme\\ufffd": "acme\\ufffd"}'
    assert row["process_name"] == "x\ufffdy" and row["upstream_id"] == "\ufffd"
    assert rows(path, "quarantine") == []
    writer.close()


COUNTS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=0, max_value=10**6),
)


@given(st.lists(COUNTS, min_size=6, max_size=6))
def test_usage_is_kept_raw_and_only_sane_counts_are_used(counts: list[int]) -> None:
    raw = {"prompt_tokens": counts[0]}
    e = normalise(entry(1, usage=Usage(*counts, raw=raw)))
    assert e.usage is not None and e.usage.raw == raw
    for value in e.usage.counts():
        assert 0 <= value <= 10**12
    insane = [c for c in counts if not 0 <= c <= 10**12]
    read, write, write_1h, reasoning = counts[1], counts[2], counts[3], counts[5]
    # Totals contain their parts: a part above its total is odd too (genai-prices refuses it).
    parts = read + write > counts[0] or write_1h > write or reasoning > counts[4]
    assert (e.usage.odd is not None) == (bool(insane) or parts)


def test_odd_usage_is_not_priced_and_a_wild_reported_cost_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = LedgerWriter(path, Pricer({})).start()
    huge = Usage(input_tokens=10**30, output_tokens=5, raw={"prompt_tokens": "1E+30"})
    negative = Usage(input_tokens=-5, output_tokens=-1, raw={"prompt_tokens": -5})
    assert writer.submit(entry(1, usage=huge)).usd is None
    assert writer.submit(entry(2, usage=negative)).source == "odd-usage"
    nan = writer.submit(entry(3, reported_cost=Decimal("NaN")))
    assert nan.source == "odd-usage"
    minus = writer.submit(entry(4, reported_cost=Decimal("-3")))
    assert minus.usd is None
    assert writer.flush()
    got = {r["request_id"]: r for r in rows(path)}
    assert got["req-1"]["input_tokens"] == 0 and got["req-1"]["usage_raw"] == (
        '{"prompt_tokens": "1E+30"}'
    )
    assert got["req-2"]["output_tokens"] == 0 and got["req-2"]["cost_usd"] is None
    assert {r["price_source"] for r in got.values()} == {"odd-usage"}
    writer.close()


def test_the_report_counts_odd_usage_as_unpriced_and_lists_the_quarantine(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    poisoned(path)
    writer = LedgerWriter(path, Pricer({})).start()
    writer.submit(entry(1, usage=Usage(input_tokens=-1, raw={})))
    writer.submit(entry(2, project="poison"))
    assert writer.flush()
    writer.close()
    runner = CliRunner()
    spend = runner.invoke(cli, ["report", "--ledger", str(path), "--format", "json"])
    assert spend.exit_code == 0, spend.output
    assert '"unpriced_requests": 1' in spend.stdout
    assert "1 row(s) in this window were quarantined" in spend.stderr
    kept = runner.invoke(cli, ["report", "--ledger", str(path), "--quarantine"])
    assert kept.exit_code == 0 and "req-2" in kept.stdout and "poison" in kept.stdout


def test_the_ledger_is_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / "ledger.db"
    writer = LedgerWriter(path, Pricer({})).start()
    writer.submit(entry(1))
    assert writer.flush()
    for part in (path, path.with_name("ledger.db-wal"), path.with_name("ledger.db-shm")):
        assert part.stat().st_mode & 0o777 == 0o600, part
    assert path.parent.stat().st_mode & 0o777 == 0o700
    writer.close()
    path.chmod(0o644)  # a ledger made by an older version, under a loose umask
    LedgerWriter(path, Pricer({})).start().close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_lost_postgres_connection_is_waited_out_not_quarantined(postgres_url: str) -> None:
    """Postgres restarting looks like this to the writer: its connection is cut. The rows
    aren't bad, so none is quarantined; the writer reconnects and writes them all."""
    import psycopg

    writer = LedgerWriter(postgres_url, Pricer({})).start()
    writer.submit(entry(1))
    assert writer.flush()
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    assert cut  # the writer's connection was there, and is gone
    for n in range(2, 12):
        writer.submit(entry(n))
    assert writer.flush()
    assert writer.outages >= 1 and writer.quarantined == 0
    conn = connect(postgres_url, readonly=True)
    try:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 11
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    finally:
        conn.close()
    writer.close()
