"""The git state of the directory a calling process works in, at call time. Never the code.

For a call attributed to a local process whose directory is in a git
repository the ledger records four facts (:class:`GitContext`): the
repository's identity (the hash of its root commit, so every clone agrees),
the branch, the HEAD commit and whether the work tree had uncommitted changes.
``tollhouse interest`` joins them to the repository's history afterwards.

Git is asked through its CLI; ``.git`` is only ever ``stat``-ed, to know when
an answer cached per repository is stale (HEAD, the branch's ref, packed-refs
and the index changing). The dirty flag reads the work tree, which changes
without touching ``.git``: it is re-checked at most every ``dirty_ttl``
seconds. Reads run in a thread, after the process lookup::

    reader = GitContextReader()
    reader.for_directory(Path("/home/me/src/app"))
    # GitContext(repo='3b18e5...', branch='main', head='9fceb0...', dirty=True)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

logger = logging.getLogger(__name__)

GIT_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
T = TypeVar("T")


class GitContext(NamedTuple):
    """A repository's state when a call was made. ``branch`` is None on a detached HEAD;
    ``dirty`` is None when the work tree couldn't be read in time."""

    repo: str
    branch: str | None
    head: str
    dirty: bool | None


@dataclass(slots=True)
class _Repo:
    """What one repository root's answers depend on, and the answers."""

    git_dir: Path
    common_dir: Path
    root_commit: str | None = None
    stamp: tuple[float, ...] = ()
    context: GitContext | None = None
    dirty_checked: float = 0.0


def find_root(directory: Path) -> Path | None:
    """The nearest directory at or above ``directory`` holding ``.git`` (a dir, or a
    worktree's file): found by ``stat`` alone."""
    for candidate in (directory, *directory.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


def run_git(root: Path, *args: str, timeout: float) -> str | None:
    """``git -C root args...``'s output; None if git fails, is missing or runs over."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **GIT_ENV},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def root_commit(root: Path, *, timeout: float = 10.0) -> str | None:
    """The repository's identity: its root commit reachable from HEAD (the smallest hash
    when history joined several roots), the same in every clone."""
    out = run_git(root, "rev-list", "--max-parents=0", "HEAD", timeout=timeout)
    roots = sorted(out.split()) if out else []
    return roots[0] if roots else None


class GitContextReader:
    """Reads and caches :class:`GitContext` per repository root; safe from several threads.

    A cached answer is reused while HEAD, the branch's ref, ``packed-refs`` and
    the index keep their modification times and sizes; then one ``git
    rev-parse`` refreshes it. ``git status`` (the dirty flag) runs at most
    every ``dirty_ttl`` seconds per repository, capped at ``timeout`` seconds.
    """

    def __init__(
        self,
        *,
        dirty_ttl: float = 2.0,
        timeout: float = 0.5,
        max_repos: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dirty_ttl = dirty_ttl
        self.timeout = timeout
        self._max_repos = max_repos
        self._clock = clock
        self._repos: OrderedDict[Path, _Repo] = OrderedDict()
        self._lock = threading.Lock()

    def for_pid(self, pid: int, *, proc: Path = Path("/proc")) -> GitContext | None:
        """The git context of the working directory of process ``pid`` (None: not in git)."""
        try:
            cwd = os.readlink(proc / str(pid) / "cwd")
        except (OSError, ValueError):
            return None
        if not os.path.isabs(cwd) or cwd.endswith(" (deleted)"):
            return None
        return self.for_directory(Path(cwd))

    def for_directory(self, directory: Path) -> GitContext | None:
        """The git context of ``directory`` (None: not in a repository with a commit)."""
        root = find_root(directory)
        if root is None:
            return None
        try:
            return self._read(root)
        except Exception:  # never fail a call's record over git
            logger.exception("reading the git context of %s failed", root)
            return None

    def _read(self, root: Path) -> GitContext | None:
        with self._lock:
            repo = self._repos.get(root)
            if repo is not None:
                self._repos.move_to_end(root)
        if repo is None:
            repo = self._open(root)
            if repo is None:
                return None
        stamp = _stamp(repo)
        now = self._clock()
        context = repo.context
        if context is None or stamp != repo.stamp:
            context = self._head(root, repo)
            if context is None:
                return None
            if context.branch != (repo.context and repo.context.branch):
                repo.context = context  # another branch: watch its ref from now on
                stamp = _stamp(repo)
                context = self._head(root, repo) or context
            repo.stamp, repo.dirty_checked = stamp, 0.0
        if repo.dirty_checked == 0.0 or now - repo.dirty_checked >= self.dirty_ttl:
            context = context._replace(dirty=self._dirty(root))
            repo.dirty_checked = now
        repo.context = context
        return context

    def _open(self, root: Path) -> _Repo | None:
        out = run_git(root, "rev-parse", "--git-dir", "--git-common-dir", timeout=self.timeout)
        lines = out.splitlines() if out else []
        if len(lines) != 2:
            return None
        git_dir, common = (root / line if not os.path.isabs(line) else Path(line) for line in lines)
        repo = _Repo(git_dir, common, root_commit(root, timeout=max(self.timeout, 10.0)))
        if repo.root_commit is None:
            return None  # no commit yet: nothing to join later
        repo.context = self._head(root, repo)  # names the branch whose ref the stamp watches
        if repo.context is None:
            return None
        with self._lock:
            self._repos[root] = repo
            while len(self._repos) > self._max_repos:
                self._repos.popitem(last=False)
        return repo

    def _head(self, root: Path, repo: _Repo) -> GitContext | None:
        out = run_git(
            root, "rev-parse", "HEAD", "--symbolic-full-name", "HEAD",
            timeout=self.timeout,
        )  # fmt: skip
        lines = out.split() if out else []
        if not lines:
            return None
        ref = lines[1] if len(lines) > 1 else "HEAD"
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        assert repo.root_commit is not None
        return GitContext(repo.root_commit, branch, lines[0], None)

    def _dirty(self, root: Path) -> bool | None:
        out = run_git(
            root, "status", "--porcelain", "--untracked-files=no", "-z", timeout=self.timeout
        )
        return None if out is None else bool(out)


def _stamp(repo: _Repo) -> tuple[float, ...]:
    """What the cached HEAD depends on, by ``stat`` only: HEAD itself, the branch's
    loose ref (named from the cache, so nothing is read), packed-refs and the index."""
    paths = [repo.git_dir / "HEAD", repo.common_dir / "packed-refs", repo.git_dir / "index"]
    if repo.context is not None and repo.context.branch:
        paths.append(repo.common_dir / "refs" / "heads" / repo.context.branch)
    stamp: list[float] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            stamp += (-1.0, -1.0)
            continue
        stamp += (st.st_mtime_ns, st.st_size)
    return tuple(stamp)


def follow(
    reader: GitContextReader,
    lookup: asyncio.Future[T | None],
    enrich: Callable[[T, GitContextReader], T],
    executor: concurrent.futures.Executor | None = None,
) -> asyncio.Future[T | None]:
    """A future for ``lookup``'s result with the git context added (``enrich`` in a thread).

    Per call: the process lookup may be shared by a keep-alive connection's calls,
    the git state is read for each. A failed git read leaves the result as it was.
    """
    loop = asyncio.get_running_loop()
    out: asyncio.Future[T | None] = loop.create_future()

    def settle(result: T | None) -> None:
        if not out.done():
            out.set_result(result)

    def then(done: asyncio.Future[T | None]) -> None:
        if done.cancelled() or done.exception() is not None or done.result() is None:
            settle(None)
            return
        found = done.result()
        assert found is not None
        try:
            job = loop.run_in_executor(executor, enrich, found, reader)
        except RuntimeError:  # shutting down
            settle(found)
            return
        # A slow repository (its first read) never costs the call its project.
        loop.call_later(reader.timeout, settle, found)
        job.add_done_callback(
            lambda j: settle(found if j.cancelled() or j.exception() else j.result())
        )

    lookup.add_done_callback(then)
    return out
