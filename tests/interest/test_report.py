"""The report's figures on scripted repositories equal the ones worked out by hand."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.interest.scripted import TEN, ScriptedLedger, ScriptedRepo, day
from tollhouse.interest import history
from tollhouse.interest.report import RepositoryReport, as_dict, repository_report

PURPOSES = ("rework", "bugfix", "fix", "revert")
FIVE = [f"ai {i}\n" for i in range(1, 6)]


@pytest.fixture
def repo(tmp_path: Path) -> ScriptedRepo:
    return ScriptedRepo(tmp_path / "app")


@pytest.fixture
def ledger(tmp_path: Path, repo: ScriptedRepo) -> Iterator[ScriptedLedger]:
    repo.commit(day(0), "start", {"a.py": TEN})  # by hand: no call before it
    yield ScriptedLedger(tmp_path / "ledger.db", repo.root_commit())


def report(
    repo: ScriptedRepo, ledger: ScriptedLedger, weeks: int = 4, **kw: object
) -> RepositoryReport:
    conn = sqlite3.connect(ledger.path)
    try:
        return repository_report(conn, repo.root, weeks=weeks, purposes=PURPOSES, **kw)  # type: ignore[arg-type]
    finally:
        conn.close()


def figures(r: RepositoryReport) -> tuple[Decimal, Decimal, Decimal, int, int]:
    rep = r.report
    return rep.principal, rep.interest, rep.unlanded, rep.ai_lines, rep.rewritten_lines


def test_a_rewrite_within_the_window_is_interest(
    repo: ScriptedRepo, ledger: ScriptedLedger
) -> None:
    c0 = repo.head()
    ledger.call(day(0.5), "1.00", c0)
    ledger.call(day(0.6), "0.25", c0)
    c1 = repo.commit(day(1), "feature", {"a.py": TEN + FIVE})  # AI-assisted: 5 lines
    ledger.call(day(8), "0.50", c1)
    changed = [*TEN, "ai 1 better\n", "ai 2 better\n", *FIVE[2:]]
    c2 = repo.commit(day(8.5), "fix it", {"a.py": changed})  # rewrites 2 of c1's lines
    # By hand: c1's calls (1.25) are principal; c2 rewrote 2 AI lines 7.5 days later:
    # its call (0.50) is interest. AI lines: c1's 5 + c2's 2; rewritten: 2.
    r = report(repo, ledger)
    assert figures(r) == (Decimal("1.25"), Decimal("0.50"), 0, 7, 2)
    assert r.report.rate == Decimal("0.4")
    assert r.report.ai_commits == 2
    [rework] = r.report.rework
    assert (rework.sha, rework.lines, rework.spend, rework.reverts) == (
        c2,
        2,
        Decimal("0.50"),
        None,
    )
    d = as_dict(r)
    assert (d["rate"], d["rewritten_share"]) == ("0.4", "0.2857")
    assert [(p["month"], p["principal_usd"], p["interest_usd"]) for p in d["periods"]] == [
        ("2026-01", "1.25", "0.5")
    ]
    assert r.repo == c0 and d["rework"][0]["commit"] == c2


def test_a_rewrite_after_the_window_is_principal(
    repo: ScriptedRepo, ledger: ScriptedLedger
) -> None:
    ledger.call(day(0.5), "1.00", repo.head())
    c1 = repo.commit(day(1), "feature", {"a.py": TEN + FIVE})
    ledger.call(day(36), "0.50", c1)
    repo.commit(day(36), "later change", {"a.py": [*TEN, "ai 1 better\n", *FIVE[1:]]})
    # 35 days > 4 weeks: not rework. With a 6-week window it is (what was cached for
    # the shorter window is read again: blame looked back only 4 weeks).
    cache = ledger.path.parent / "cache"
    assert figures(report(repo, ledger, cache_dir=cache)) == (Decimal("1.50"), 0, 0, 6, 0)
    six = report(repo, ledger, weeks=6, cache_dir=cache)
    assert figures(six) == (Decimal("1.00"), Decimal("0.50"), 0, 6, 1)
    assert figures(report(repo, ledger, cache_dir=cache)) == (Decimal("1.50"), 0, 0, 6, 0)


def test_a_rewrite_of_human_lines_is_not_rework(repo: ScriptedRepo, ledger: ScriptedLedger) -> None:
    ledger.call(day(0.5), "1.00", repo.head())
    c1 = repo.commit(day(1), "feature", {"a.py": TEN + FIVE})
    ledger.call(day(2), "0.40", c1)
    repo.commit(day(2), "edit", {"a.py": ["line one\n", *TEN[1:], *FIVE]})  # line 1 is c0's
    assert figures(report(repo, ledger)) == (Decimal("1.40"), 0, 0, 6, 0)
    assert report(repo, ledger).report.rework == []


def test_tagged_calls_are_interest_wherever_they_land(
    repo: ScriptedRepo, ledger: ScriptedLedger
) -> None:
    ledger.call(day(0.5), "1.00", repo.head())
    ledger.call(day(0.7), "0.30", repo.head(), purpose="bugfix")
    c1 = repo.commit(day(1), "feature", {"a.py": TEN + FIVE})
    ledger.call(day(3), "0.20", c1, purpose="Fix")  # not landed yet, still interest
    ledger.call(day(3), "0.05", c1)  # not landed yet: neither
    r = report(repo, ledger)
    assert figures(r) == (Decimal("1.00"), Decimal("0.50"), Decimal("0.05"), 5, 0)
    assert r.report.periods[0].tagged == Decimal("0.50")


def test_a_revert_is_rework_even_when_no_ai_line_is_removed(
    repo: ScriptedRepo, ledger: ScriptedLedger
) -> None:
    ledger.call(day(0.5), "2.00", repo.head())
    c1 = repo.commit(day(1), "drop lines", {"a.py": TEN[3:]})  # AI-assisted, deletes 3 lines
    ledger.call(day(2), "0.40", c1)
    repo.when = day(2)
    repo.git("revert", "--no-edit", c1)
    revert = repo.head()
    # The revert re-adds c0's lines and removes nothing of c1's: its message decides.
    r = report(repo, ledger)
    assert figures(r) == (Decimal("2.00"), Decimal("0.40"), 0, 3, 0)
    assert [(c.sha, c.reverts, c.lines) for c in r.report.rework] == [(revert, c1, 0)]


def test_a_revert_of_added_lines_rewrites_them_all(
    repo: ScriptedRepo, ledger: ScriptedLedger
) -> None:
    ledger.call(day(0.5), "1.00", repo.head())
    c1 = repo.commit(day(1), "feature", {"a.py": TEN + FIVE, "b.py": FIVE})
    ledger.call(day(1.5), "0.10", c1)
    repo.when = day(2)
    repo.git("revert", "--no-edit", c1)
    r = report(repo, ledger)
    # c1 added 10 lines, the revert removed all 10 (and added none).
    assert figures(r) == (Decimal("1.00"), Decimal("0.10"), 0, 10, 10)
    assert r.report.rewritten_share == 1


def test_merges_land_spend_on_the_branch_and_find_rewrites_across(
    repo: ScriptedRepo, ledger: ScriptedLedger
) -> None:
    c0 = repo.head()
    repo.git("checkout", "-q", "-b", "feature")
    ledger.call(day(0.5), "2.00", c0, "feature")
    f1 = repo.commit(day(2), "feature work", {"b.py": FIVE[:4]})  # AI-assisted, 4 lines
    repo.git("checkout", "-q", "main")
    h1 = repo.commit(day(1), "by hand on main", {"c.py": ["x\n"]})  # earlier, same parent
    repo.when = day(3)
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    m1 = repo.head()
    ledger.call(day(4), "0.30", m1, purpose="bugfix")
    ledger.call(day(4), "0.70", m1)
    c3 = repo.commit(day(5), "fix b", {"b.py": ["ai 1\n", "ai 2 fixed\n", *FIVE[2:4]]})
    # By hand: the feature call (2.00) landed on f1, not on h1; c3 rewrote 1 of f1's 4 lines
    # (blamed at the merge): both calls at m1 are interest, 0.30 of it tagged.
    r = report(repo, ledger)
    assert figures(r) == (Decimal("2.00"), Decimal("1.00"), 0, 5, 1)
    assert [(c.sha, c.lines, c.spend) for c in r.report.rework] == [(c3, 1, Decimal("1.00"))]
    assert r.report.ai_commits == 2 and h1 != f1
    # The branch deleted after its merge: the call still lands on f1 (off main's history).
    repo.git("branch", "-q", "-D", "feature")
    assert figures(report(repo, ledger)) == (Decimal("2.00"), Decimal("1.00"), 0, 5, 1)


def test_projects_months_and_since(repo: ScriptedRepo, ledger: ScriptedLedger) -> None:
    ledger.call(day(0.5), "1.00", repo.head(), project="acme")
    ledger.call(day(0.5), "3.00", repo.head(), project="tools")
    c1 = repo.commit(day(1), "feature", {"a.py": TEN + FIVE})
    ledger.call(day(30), "0.60", c1, project="acme")  # February
    repo.commit(day(30), "rewrite", {"a.py": TEN + FIVE[:4]})  # removes 1 AI line, 29 days on
    d = as_dict(report(repo, ledger, weeks=5))
    assert [
        (p["project"], p["month"], p["principal_usd"], p["interest_usd"], p["rate"])
        for p in d["periods"]
    ] == [
        ("acme", "2026-01", "1", "0", "0"),
        ("acme", "2026-02", "0", "0.6", None),
        ("tools", "2026-01", "3", "0", "0"),
    ]
    # --since February: only February's calls; c1's lines (January) not in the share.
    since = day(27)
    r = report(repo, ledger, weeks=5, since=since)
    assert figures(r) == (0, Decimal("0.60"), 0, 0, 0)
    assert [c.lines for c in r.report.rework] == [1]
    # tools' calls alone: c1 is still AI-assisted, and its line was still rewritten.
    tools = report(repo, ledger, weeks=5, project="tools")
    assert figures(tools) == (Decimal("3.00"), 0, 0, 5, 1)


def test_calls_of_other_repositories_are_left_out(
    repo: ScriptedRepo, ledger: ScriptedLedger
) -> None:
    ledger.call(day(0.5), "1.00", repo.head())
    ledger.call(day(0.5), "9.00", repo.head(), repo="f" * 40)
    repo.commit(day(1), "feature", {"a.py": TEN + FIVE})
    assert report(repo, ledger).calls == 1
    assert report(repo, ledger).report.principal == Decimal("1.00")


def test_changes_are_read_from_git_once(
    repo: ScriptedRepo, ledger: ScriptedLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.call(day(0.5), "1.00", repo.head())
    c1 = repo.commit(day(1), "feature", {"a.py": TEN + FIVE})
    ledger.call(day(2), "0.50", c1)
    repo.commit(day(2), "fix", {"a.py": TEN + FIVE[:3]})
    cache = tmp_path / "cache"
    first = figures(report(repo, ledger, cache_dir=cache))
    assert first == (Decimal("1.00"), Decimal("0.50"), 0, 5, 2)
    assert (cache / f"{repo.root_commit()}.json").exists()

    def no_git(*args: object) -> None:
        raise AssertionError("read from git again")

    monkeypatch.setattr(history, "read_change", no_git)
    monkeypatch.setattr(history, "read_patches", no_git)
    assert figures(report(repo, ledger, cache_dir=cache)) == first


def test_a_file_skipped_before_is_blamed_once_a_call_makes_it_matter(
    repo: ScriptedRepo, ledger: ScriptedLedger, tmp_path: Path
) -> None:
    c0 = repo.head()
    ledger.call(day(0.5), "1.00", c0)
    c1 = repo.commit(day(1), "a", {"a.py": [*TEN, *FIVE]})  # AI-assisted
    b1 = repo.commit(day(2), "b by hand", {"b.py": FIVE})
    ledger.call(day(3), "0.50", b1)
    repo.commit(day(3), "touch both", {"a.py": TEN, "b.py": FIVE[:2]})  # 5 of a, 3 of b
    cache = tmp_path / "cache"
    # b1 has no call: b.py lines aren't AI lines, and b.py isn't even blamed.
    assert figures(report(repo, ledger, cache_dir=cache)) == (
        Decimal("1.00"),
        Decimal("0.50"),
        0,
        5,
        5,
    )
    ledger.call(day(1.5), "0.20", c1)  # a call found later: b1 was AI-assisted after all
    assert figures(report(repo, ledger, cache_dir=cache)) == (
        Decimal("1.20"),
        Decimal("0.50"),
        0,
        10,
        8,
    )
