"""A repository's history as :mod:`tollhouse.interest.account` needs it, read by the git CLI.

Only what the calls point at is read: commits since the first call (less a
day of clock skew), the first-parent history of the branches calls were made
on, and, for non-merge commits near an AI-assisted one, what they did to
lines: ``git diff-tree -U0`` for the hunks, then ``git blame --porcelain`` of
the removed lines at the parent, for who introduced them. A commit's change
never changes, so it is cached on disk per repository and read once: a
second report on a large repository runs git only for the new commits.

The parsers (:func:`parse_log`, :func:`parse_patch`, :func:`parse_blame`) are
plain functions of text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tollhouse.attribution.gitcontext import GIT_ENV
from tollhouse.errors import TollhouseError
from tollhouse.interest.account import WEEK, Change, Commit, History, Landing, Spend

SKEW = 86_400  # commits may carry a clock a day behind the calls' clock
CACHE_VERSION = 2
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{40})")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_BLAME_HEADER = re.compile(r"^([0-9a-f]{40}) \d+ \d+(?: \d+)?$")
_ESCAPE = re.compile(rb"\\([0-7]{3}|.)", re.DOTALL)
_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r"}


class GitError(TollhouseError):
    """git failed on the repository (not a repository, a git too old, ...)."""


class Git:
    """Runs git in one repository (the CLI: never ``.git`` read by hand)."""

    def __init__(self, root: Path, *, timeout: float = 600.0) -> None:
        self.root = root
        self.timeout = timeout

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> str | None:
        """``git args...``'s output; None for an exit status in ``ok`` other than 0."""
        command = ["git", "-c", "core.quotePath=false", "-C", str(self.root), *args]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                timeout=self.timeout,
                env={**os.environ, **GIT_ENV},
                check=False,
            )
        except FileNotFoundError:
            raise GitError("git is not installed (or not on PATH)") from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} ran over {self.timeout:.0f} s in {self.root}") from None
        if done.returncode == 0:
            return done.stdout.decode("utf-8", "replace")
        if done.returncode in ok:
            return None
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} in {self.root}: {message[-1] if message else 'failed'}")


# -- parsers (sans-io) ------------------------------------------------------------------------

LOG_FORMAT = "%H%x1f%P%x1f%ct%x1f%B%x1e"


def parse_log(text: str) -> Iterator[Commit]:
    """Commits from ``git log --format=`` :data:`LOG_FORMAT`."""
    for record in text.split("\x1e"):
        parts = record.strip("\n").split("\x1f")
        if len(parts) != 4:
            continue
        sha, parents, time, body = parts
        reverts = _REVERTS.search(body)
        yield Commit(sha, tuple(parents.split()), int(time), reverts[1] if reverts else None)


class FileChange(NamedTuple):
    """One file of a commit's ``-U0`` patch: its old path and the removed line ranges."""

    old_path: str | None  # None: the file is new
    removed: list[tuple[int, int]]  # (first line, count) in the old file


def parse_patch(text: str) -> tuple[int, list[FileChange]]:
    """Lines added, and per file the old lines removed, from ``git diff-tree -p -U0``."""
    added = 0
    files: list[FileChange] = []
    current: FileChange | None = None
    in_hunk = False
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            current, in_hunk = None, False
        elif not in_hunk and line.startswith("--- "):
            current = FileChange(_patch_path(line[4:], "a/"), [])
            files.append(current)
        elif line.startswith("@@ "):
            in_hunk = True
            hunk = _HUNK.match(line)
            if hunk and current is not None:
                count = 1 if hunk[2] is None else int(hunk[2])
                if count:
                    current.removed.append((int(hunk[1]), count))
        elif in_hunk and line.startswith("+"):
            added += 1
    return added, [f for f in files if f.old_path is not None and f.removed]


def _patch_path(text: str, prefix: str) -> str | None:
    text = text.rstrip("\t")
    if text == "/dev/null":
        return None
    if text.startswith('"') and text.endswith('"'):
        text = _unquote(text[1:-1])
    return text.removeprefix(prefix)


def _unquote(text: str) -> str:
    """git's C-style quoting of an unusual path, undone (octal escapes are UTF-8 bytes)."""

    def one(m: re.Match[bytes]) -> bytes:
        escape = m[1]
        if escape[:1].isdigit():
            return bytes([int(escape, 8) & 0xFF])
        return _ESCAPES.get(escape.decode(), escape.decode()).encode()

    return _ESCAPE.sub(one, text.encode()).decode("utf-8", "replace")


def parse_blame(text: str) -> Counter[str]:
    """Lines per introducing commit, from ``git blame --porcelain`` (one header per line).

    Lines blamed on a boundary commit (older than ``--since``: their true origin
    wasn't looked for) are left out.
    """
    found: Counter[str] = Counter()
    boundary: set[str] = set()
    current = ""
    for line in text.split("\n"):
        header = _BLAME_HEADER.match(line)
        if header:
            current = header[1]
            found[current] += 1
        elif line == "boundary":
            boundary.add(current)
    for sha in boundary:
        del found[sha]
    return found


# -- reading a repository ----------------------------------------------------------------------


def read_commits(git: Git, since: int) -> dict[str, Commit]:
    """Every commit reachable from any ref, committed at or after ``since`` (unix s)."""
    out = git.run("log", "--all", f"--since=@{since}", f"--format={LOG_FORMAT}") or ""
    return {c.sha: c for c in parse_log(out)}


def read_branch(git: Git, branch: str, since: int) -> list[str] | None:
    """``branch``'s first-parent history since ``since``, newest first (None: no such branch)."""
    ref = f"refs/heads/{branch}"
    tip = git.run("rev-parse", "--verify", "-q", ref, ok=(1,))
    if tip is None:
        return None
    out = git.run("rev-list", "--first-parent", f"--since=@{since}", ref) or ""
    return out.split() or [tip.strip()]


def read_branch_names(git: Git) -> list[str]:
    """The local branches."""
    out = git.run("for-each-ref", "--format=%(refname)", "refs/heads/") or ""
    return [line.removeprefix("refs/heads/") for line in out.splitlines() if line]


def read_change(git: Git, commit: Commit, window: int) -> Change:
    """What ``commit`` (not a merge) did to lines: added, and removed by introducing commit.

    Blame looks back ``window`` seconds only: an older origin isn't what the report
    counts, and it is where a long history makes blame slow.
    """
    patch = git.run(
        "diff-tree", "-r", "-p", "-U0", "-M", "--root", "--no-commit-id", "--no-color",
        "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/", commit.sha,
    )  # fmt: skip
    added, files = parse_patch(patch or "")
    removed: Counter[str] = Counter()
    since = f"--since=@{max(0, commit.time - window - 1)}"
    if commit.parents:
        for f in files:
            assert f.old_path is not None
            ranges = [arg for first, n in f.removed for arg in ("-L", f"{first},+{n}")]
            blame = git.run(
                "blame", "--porcelain", since, *ranges, commit.parents[0], "--", f.old_path
            )
            removed.update(parse_blame(blame or ""))
    return Change(added, dict(removed), window)


@dataclass
class ChangeCache:
    """Changes already read, per repository, in one JSON file (commits never change)."""

    path: Path | None
    changes: dict[str, Change]
    dirty: bool = False

    @classmethod
    def open(cls, path: Path | None) -> ChangeCache:
        changes: dict[str, Change] = {}
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("version") == CACHE_VERSION:
                    changes = {k: Change(*v) for k, v in data["changes"].items()}
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                changes = {}  # missing or damaged: read again from git
        return cls(path, changes)

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": CACHE_VERSION, "changes": {k: list(v) for k, v in self.changes.items()}}
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".interest-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"))
        os.replace(temp, self.path)
        self.dirty = False


def load_history(
    git: Git, spend: Iterable[Spend], weeks: int, cache: ChangeCache
) -> tuple[History, list[Spend]]:
    """The history ``spend`` (the repository's calls) needs; the calls as a list."""
    calls = list(spend)
    if not calls:
        return History({}, {}, {}), calls
    since = int(min(s.ts for s in calls).timestamp()) - SKEW
    commits = read_commits(git, since)
    branches: dict[str, list[str]] = {}
    named = {s.branch for s in calls if s.branch}
    for name in sorted(named | set(read_branch_names(git))):
        chain = read_branch(git, name, since)
        if chain is not None:
            branches[name] = chain
    history = History(commits, branches, {})
    land = Landing(history)
    ai = {sha for s in calls if (sha := land(s.branch, s.head)) is not None}
    window = weeks * WEEK
    changes = {
        sha: _change(git, commits[sha], cache, window) for sha in _worth_reading(commits, ai, weeks)
    }
    cache.save()
    return History(commits, branches, changes), calls


def _worth_reading(commits: Mapping[str, Commit], ai: set[str], weeks: int) -> list[str]:
    """Non-merge commits an AI-assisted commit's lines could matter to: the AI-assisted
    ones (their lines added) and those up to ``weeks`` after one (what they rewrote)."""
    times = sorted(commits[sha].time for sha in ai if sha in commits)
    if not times:
        return []
    first, last = times[0], times[-1] + weeks * WEEK
    return [
        c.sha for c in commits.values() if not c.merge and (c.sha in ai or first <= c.time <= last)
    ]


def _change(git: Git, commit: Commit, cache: ChangeCache, window: int) -> Change:
    found = cache.changes.get(commit.sha)
    if found is None or found.window < window:  # read for a shorter window: look further
        found = read_change(git, commit, window)
        cache.changes[commit.sha] = found
        cache.dirty = True
    return found


def repository_root(path: Path) -> Path:
    """The work tree's top directory holding ``path``."""
    out = Git(path).run("rev-parse", "--show-toplevel", ok=(128,))
    if not out:
        raise GitError(f"{path}: not in a git repository (give one with --repo PATH)")
    return Path(out.strip())
