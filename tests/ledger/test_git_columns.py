"""Git context on ledger rows: written, journaled and replayed the same (migration 7)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.ledger.test_writer import entry
from tollhouse.attribution.gitcontext import GitContext
from tollhouse.ledger.entry import from_facts, plain_facts, to_facts
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing import Pricer

GIT = GitContext("a" * 40, "feature/x", "b" * 40, True)
COLUMNS = "SELECT request_id, git_repo, git_branch, git_head, git_dirty FROM requests ORDER BY 1"


def git_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(COLUMNS))


def test_rows_carry_their_git_context(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path / "l.db", Pricer({})).start()
    writer.submit(entry(1, git=GIT))
    writer.submit(entry(2, git=GIT._replace(branch=None, dirty=None)))  # detached, unknown
    writer.submit(entry(3))
    writer.close()
    assert git_rows(tmp_path / "l.db") == [
        (entry(1).request_id, "a" * 40, "feature/x", "b" * 40, 1),
        (entry(2).request_id, "a" * 40, None, "b" * 40, None),
        (entry(3).request_id, None, None, None, None),
    ]


def test_a_replayed_row_keeps_its_git_context(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    crashed = LedgerWriter(tmp_path / "l.db", Pricer({}), journal=journal).start()
    assert crashed.seal(entry(1, git=GIT)) is not None
    assert crashed.journal is not None
    crashed.journal.close(delete=False)  # died before the commit
    crashed.close()
    LedgerWriter(tmp_path / "l.db", Pricer({}), journal=journal).start().close()
    assert git_rows(tmp_path / "l.db") == [
        (entry(1).request_id, "a" * 40, "feature/x", "b" * 40, 1)
    ]


def test_facts_round_trip_and_older_journals_have_none() -> None:
    facts = plain_facts(to_facts(entry(1, git=GIT)))
    assert from_facts(facts).git == GIT
    assert from_facts(facts[:25]).git is None  # journaled before migration 7
