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

import bisect
import concurrent.futures
import json
import os
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tollhouse.attribution.gitcontext import GIT_ENV
from tollhouse.errors import TollhouseError
from tollhouse.interest.account import WEEK, Change, Commit, History, Landing, Spend

SKEW = 86_400  # commits may carry a clock a day behind the calls' clock
CACHE_VERSION = 3
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{40})")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_BLAME_HEADER = re.compile(r"^([0-9a-f]{40}) \d+ \d+(?: \d+)?$")
_ESCAPE = re.compile(rb"\\([0-7]{3}|.)", re.DOTALL)
_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r"}


# Whatever the user's config says: paths as they are, a root commit's patch, no signatures.
SAFE_CONFIG = (
    "-c", "core.quotePath=false", "-c", "log.showRoot=true", "-c", "log.showSignature=false",
)  # fmt: skip


class GitError(TollhouseError):
    """git failed on the repository (not a repository, a git too old, ...)."""


class Git:
    """Runs git in one repository (the CLI: never ``.git`` read by hand)."""

    def __init__(self, root: Path, *, timeout: float = 600.0) -> None:
        self.root = root
        self.timeout = timeout

    def run(self, *args: str, ok: tuple[int, ...] = (0,), stdin: str = "") -> str | None:
        """``git args...``'s output; None for an exit status in ``ok`` other than 0."""
        command = ["git", *SAFE_CONFIG, "-C", str(self.root), *args]
        try:
            done = subprocess.run(
                command,
                input=stdin.encode(),
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


def read_touched(git: Git, since: int) -> dict[str, frozenset[str]]:
    """The paths each commit since ``since`` touched (one ``git log --name-only``)."""
    out = git.run("log", "--all", f"--since=@{since}", "--no-renames", "--name-only",
                  "--format=%x1e%H")  # fmt: skip
    touched: dict[str, frozenset[str]] = {}
    for record in (out or "").split("\x1e"):
        lines = [line for line in record.split("\n") if line]
        if lines:
            touched[lines[0]] = frozenset(_name(line) for line in lines[1:])
    return touched


def _name(text: str) -> str:
    return _unquote(text[1:-1]) if text.startswith('"') and text.endswith('"') else text


class Relevance:
    """The paths worth blaming in a commit: those an AI-assisted commit at most
    ``window`` older touched. Lines anywhere else can't be AI lines in the window."""

    def __init__(
        self,
        commits: Mapping[str, Commit],
        touched: Mapping[str, frozenset[str]],
        ai: Iterable[str],
        window: int,
    ) -> None:
        self._ai = sorted((commits[a].time, a) for a in ai if a in commits and not commits[a].merge)
        self._times = [t for t, _ in self._ai]
        self._touched = touched
        self.window = window

    def paths(self, commit: Commit) -> set[str]:
        lo = bisect.bisect_left(self._times, commit.time - self.window)
        hi = bisect.bisect_right(self._times, commit.time)
        found: set[str] = set()
        for _, sha in self._ai[lo:hi]:
            if sha != commit.sha:
                found |= self._touched.get(sha, frozenset())
        return found


PATCH_ARGS = (
    "-p", "-U0", "-M", "--no-color", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/",
)  # fmt: skip
_RECORD = re.compile(r"^\x1e([0-9a-f]{40})$", re.MULTILINE)


def read_patches(git: Git, commits: list[Commit]) -> dict[str, str]:
    """Each commit's ``-U0`` patch against its first parent, from one ``git log``.

    A record starts with a line ``\x1e<sha>``; a patch's own lines all start with a
    diff marker (``+``, ``-``, space, ``@``, ``diff``...), so none is taken for one.
    """
    if not commits:
        return {}
    out = git.run(
        "log", "--no-walk=unsorted", "--stdin", "--format=%x1e%H", *PATCH_ARGS,
        stdin="".join(f"{c.sha}\n" for c in commits),
    )  # fmt: skip
    parts = _RECORD.split(out or "")
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def read_change(
    git: Git, commit: Commit, window: int, paths: Container[str] | None, patch: str
) -> Change:
    """What ``commit`` (not a merge) did to lines, from its ``patch``: added, and removed
    by introducing commit.

    Blame looks back ``window`` seconds only: an older origin isn't what the report
    counts, and it is where a long history makes blame slow. Only files in ``paths``
    (None: all) are blamed; the others are listed as skipped.
    """
    added, files = parse_patch(patch)
    removed: Counter[str] = Counter()
    skipped: list[str] = []
    since = f"--since=@{max(0, commit.time - window - 1)}"
    if commit.parents:
        for f in files:
            assert f.old_path is not None
            if paths is not None and f.old_path not in paths:
                skipped.append(f.old_path)
                continue
            ranges = [arg for first, n in f.removed for arg in ("-L", f"{first},+{n}")]
            blame = git.run(
                "blame", "--porcelain", since, *ranges, commit.parents[0], "--", f.old_path
            )
            removed.update(parse_blame(blame or ""))
    return Change(added, dict(removed), window, tuple(skipped))


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
                    changes = {
                        k: Change(a, r, w, tuple(skip))
                        for k, (a, r, w, skip) in data["changes"].items()
                    }
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
    wanted = [commits[sha] for sha in _worth_reading(commits, ai, weeks)]
    relevance = Relevance(commits, read_touched(git, since) if wanted else {}, ai, window)
    changes = read_changes(git, wanted, cache, relevance)
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


def read_changes(
    git: Git, wanted: list[Commit], cache: ChangeCache, relevance: Relevance
) -> dict[str, Change]:
    """The changes of ``wanted``: from the cache, else from git (several commits at once:
    a git process per file is mostly waiting to start).

    A cached change is read again when it was read for a shorter window, or when a
    file it didn't blame is now one an AI-assisted commit touched (more calls since).
    """
    window = relevance.window
    found: dict[str, Change] = {}
    missing: list[tuple[Commit, set[str]]] = []
    for commit in wanted:
        paths = relevance.paths(commit)
        cached = cache.changes.get(commit.sha)
        if cached is None or cached.window < window or not paths.isdisjoint(cached.skipped):
            missing.append((commit, paths))
        else:
            found[commit.sha] = cached
    if not missing:
        return found
    patches = read_patches(git, [commit for commit, _ in missing])
    workers = min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        read = pool.map(
            lambda job: read_change(git, job[0], window, job[1], patches.get(job[0].sha, "")),
            missing,
        )
        for (commit, _), change in zip(missing, read, strict=True):
            found[commit.sha] = cache.changes[commit.sha] = change
            cache.dirty = True
    return found


def repository_root(path: Path) -> Path:
    """The work tree's top directory holding ``path``."""
    out = Git(path).run("rev-parse", "--show-toplevel", ok=(128,))
    if not out:
        raise GitError(f"{path}: not in a git repository (give one with --repo PATH)")
    return Path(out.strip())
