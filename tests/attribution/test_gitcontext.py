"""The git context of a calling process's directory: read by git, cached, invalidated."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interest.scripted import TEN, ScriptedRepo, day
from tollhouse.attribution import gitcontext
from tollhouse.attribution.chain import attribution_of, with_git
from tollhouse.attribution.gitcontext import GitContext, GitContextReader, follow
from tollhouse.attribution.process import ProcessAttribution


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> ScriptedRepo:
    r = ScriptedRepo(tmp_path / "app")
    r.commit(day(0), "start", {"a.py": TEN})
    (r.root / "sub").mkdir()
    return r


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The git commands the reader runs."""
    seen: list[tuple[str, ...]] = []
    real = gitcontext.run_git

    def counted(root: Path, *args: str, timeout: float) -> str | None:
        seen.append(args)
        return real(root, *args, timeout=timeout)

    monkeypatch.setattr(gitcontext, "run_git", counted)
    return seen


def test_repository_branch_head_and_dirty(repo: ScriptedRepo) -> None:
    reader = GitContextReader()
    root, head = repo.root_commit(), repo.head()
    assert reader.for_directory(repo.root / "sub") == GitContext(root, "main", head, False)
    (repo.root / "a.py").write_text("changed\n")
    assert GitContextReader().for_directory(repo.root) == GitContext(root, "main", head, True)


def test_nothing_outside_a_repository_or_before_its_first_commit(tmp_path: Path) -> None:
    assert GitContextReader().for_directory(tmp_path) is None
    ScriptedRepo(tmp_path / "empty")
    assert GitContextReader().for_directory(tmp_path / "empty") is None


def test_a_clone_has_the_same_identity_and_a_detached_head_no_branch(
    repo: ScriptedRepo, tmp_path: Path
) -> None:
    first = repo.head()
    repo.commit(day(1), "more", {"b.py": ["b\n"]})
    subprocess.run(["git", "clone", "-q", str(repo.root), str(tmp_path / "clone")], check=True)
    clone = GitContextReader().for_directory(tmp_path / "clone")
    assert clone is not None and clone.repo == repo.root_commit() == first
    repo.git("checkout", "-q", "--detach", first)
    assert GitContextReader().for_directory(repo.root) == GitContext(first, None, first, False)


def test_cached_until_head_moves(repo: ScriptedRepo, runs: list[tuple[str, ...]]) -> None:
    clock = Clock()
    reader = GitContextReader(clock=clock, dirty_ttl=2.0)
    first = reader.for_directory(repo.root)
    opened = len(runs)
    clock.now += 1
    for _ in range(5):
        assert reader.for_directory(repo.root / "sub") == first
    assert len(runs) == opened  # nothing moved: no git at all
    settled = opened
    second = repo.commit(day(1), "next", {"a.py": TEN[:5]})
    found = reader.for_directory(repo.root)
    assert found is not None and found.head == second  # no wait for a time to live
    assert ("rev-parse", "HEAD", "--symbolic-full-name", "HEAD") in runs[settled:]


def test_dirty_is_rechecked_after_its_time_to_live(repo: ScriptedRepo) -> None:
    clock = Clock()
    reader = GitContextReader(clock=clock, dirty_ttl=2.0)
    before = reader.for_directory(repo.root)
    assert before is not None and before.dirty is False
    (repo.root / "a.py").write_text("changed\n")  # the work tree: nothing in .git moves
    clock.now += 1
    assert reader.for_directory(repo.root) == before
    clock.now += 1
    assert reader.for_directory(repo.root) == before._replace(dirty=True)


def test_a_checkout_of_another_branch_is_seen(repo: ScriptedRepo) -> None:
    reader = GitContextReader(clock=Clock())
    reader.for_directory(repo.root)
    repo.git("checkout", "-q", "-b", "topic")
    found = reader.for_directory(repo.root)
    assert found is not None and found.branch == "topic"


@pytest.fixture
def child(repo: ScriptedRepo) -> Iterator[subprocess.Popen[bytes]]:
    with subprocess.Popen(["sleep", "60"], cwd=repo.root / "sub") as proc:
        yield proc
        proc.kill()


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads /proc")
def test_a_process_attribution_gains_its_git_context(
    repo: ScriptedRepo, child: subprocess.Popen[bytes]
) -> None:
    found = ProcessAttribution("app", "process:git", child.pid, "sleep", {"team": "x"})
    reader = GitContextReader()

    async def run() -> Any:
        lookup: asyncio.Future[ProcessAttribution | None] = (
            asyncio.get_running_loop().create_future()
        )
        pending = follow(reader, lookup, with_git)
        lookup.set_result(found)
        return await pending

    enriched = asyncio.run(run())
    who = attribution_of(enriched)
    assert (who.project, who.how, who.process_name, who.tags) == (
        "app",
        "process:git",
        "sleep",
        {"team": "x"},
    )
    assert who.git == GitContext(repo.root_commit(), "main", repo.head(), False)


def test_a_lookup_that_found_nothing_stays_nothing() -> None:
    async def run() -> Any:
        lookup: asyncio.Future[ProcessAttribution | None] = (
            asyncio.get_running_loop().create_future()
        )
        pending = follow(GitContextReader(), lookup, with_git)
        lookup.set_result(None)
        return await pending

    assert asyncio.run(run()) is None


def test_a_slow_repository_never_costs_the_call_its_project(tmp_path: Path) -> None:
    found = ProcessAttribution("app", "process:cwd", 1, "x")

    def stuck(found: ProcessAttribution, reader: GitContextReader) -> ProcessAttribution:
        import time

        time.sleep(1.0)
        raise AssertionError("never used")

    async def run() -> Any:
        lookup: asyncio.Future[ProcessAttribution | None] = (
            asyncio.get_running_loop().create_future()
        )
        pending = follow(GitContextReader(timeout=0.05), lookup, stuck)
        lookup.set_result(found)
        return await pending

    assert asyncio.run(run()) is found
