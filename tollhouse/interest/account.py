"""Principal and interest: AI spend joined to what happened to the code afterwards (sans-io).

Plain data in (the ledger's calls with their git context, the repository's
commits and what each commit rewrote), a :class:`InterestReport` out. No git,
no database, no clock: :mod:`tollhouse.interest.history` reads git and
:mod:`tollhouse.interest.spend` reads the ledger.

The definitions (the README's, word for word in spirit):

- A call **lands** on a commit: the call was made on branch ``B`` at HEAD
  ``P``; it lands on the commit that followed ``P`` on ``B`` (``B``'s
  first-parent history), else, when ``B`` is gone (merged and deleted,
  detached HEAD), on the earliest commit whose first parent is ``P``. A call
  with no such commit yet is **unlanded**: work in progress, abandoned, or
  history rewritten under it.
- An **AI-assisted commit** is a commit at least one call landed on (its
  window: from the branch's previous commit to it).
- A **rework commit** is a non-merge commit that removes or changes at least
  one line introduced by a non-merge AI-assisted commit at most ``weeks``
  weeks older (by committer time; found by blaming the removed lines at the
  commit's parent), or whose message says it reverts such a commit.
- **Interest**: the cost of calls tagged ``purpose`` in the rework set, plus
  the cost of calls that landed on a rework commit.
- **Principal**: the cost of the other calls that landed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

WEEK = 7 * 86_400
ZERO = Decimal(0)


class Commit(NamedTuple):
    """One commit as ``git log`` tells it: committer time in unix seconds."""

    sha: str
    parents: tuple[str, ...]
    time: int
    reverts: str | None = None  # "This reverts commit <sha>." in its message

    @property
    def merge(self) -> bool:
        return len(self.parents) > 1


class Change(NamedTuple):
    """What a non-merge commit did to lines: how many it added, and the lines of its
    parent it removed or changed, counted by the commit that introduced them."""

    added: int
    removed_from: Mapping[str, int]
    window: int = 0  # seconds blame looked back (older origins aren't in removed_from)
    skipped: tuple[str, ...] = ()  # files with removed lines not blamed (no AI commit near)


class Spend(NamedTuple):
    """One call of the ledger with its git context."""

    ts: datetime
    project: str
    cost: Decimal
    purpose: str | None
    branch: str | None
    head: str


class History(NamedTuple):
    """The commits needed, by sha; first-parent history of each branch still there
    (newest first); and each commit's change (non-merge commits near AI-assisted ones)."""

    commits: Mapping[str, Commit]
    branches: Mapping[str, Sequence[str]]
    changes: Mapping[str, Change]


@dataclass(slots=True)
class ReworkCommit:
    sha: str
    time: int
    lines: int  # AI-assisted lines it rewrote within the window
    reverts: str | None
    spend: Decimal = ZERO


@dataclass(slots=True)
class Period:
    """One project's month."""

    project: str
    month: str
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    tagged: Decimal = ZERO  # the part of interest from calls tagged as rework
    unlanded: Decimal = ZERO

    @property
    def rate(self) -> Decimal | None:
        return None if not self.principal else self.interest / self.principal


@dataclass(slots=True)
class InterestReport:
    weeks: int
    periods: list[Period] = field(default_factory=list)
    ai_commits: int = 0
    ai_lines: int = 0
    rewritten_lines: int = 0
    rework: list[ReworkCommit] = field(default_factory=list)

    @property
    def principal(self) -> Decimal:
        return sum((p.principal for p in self.periods), ZERO)

    @property
    def interest(self) -> Decimal:
        return sum((p.interest for p in self.periods), ZERO)

    @property
    def unlanded(self) -> Decimal:
        return sum((p.unlanded for p in self.periods), ZERO)

    @property
    def rate(self) -> Decimal | None:
        principal = self.principal
        return None if not principal else self.interest / principal

    @property
    def rewritten_share(self) -> Decimal | None:
        return None if not self.ai_lines else Decimal(self.rewritten_lines) / self.ai_lines


class Landing:
    """Where calls land: each branch's next commit after a HEAD, else a HEAD's earliest
    first-parent child off the live branches' histories (then the earliest at all).
    Built once per report (indexes, not scans, per call)."""

    def __init__(self, history: History) -> None:
        self._next: dict[str, dict[str, str | None]] = {}
        for branch, chain in history.branches.items():
            after: dict[str, str | None] = {chain[i]: chain[i - 1] for i in range(1, len(chain))}
            if chain:
                after[chain[0]] = None  # the branch's tip: nothing landed yet
            self._next[branch] = after
        # A branch gone (merged, deleted): its commits are off every live branch's
        # first-parent history, so a child there is preferred to one on such a history.
        on_chain = {sha for chain in history.branches.values() for sha in chain}
        self._child: dict[str, Commit] = {}
        for c in history.commits.values():
            if not c.parents:
                continue
            known = self._child.get(c.parents[0])
            if known is None or _rank(c, on_chain) < _rank(known, on_chain):
                self._child[c.parents[0]] = c

    def __call__(self, branch: str | None, head: str) -> str | None:
        """The commit a call made on ``branch`` at ``head`` landed on, if any yet."""
        on_branch = self._next.get(branch) if branch else None
        if on_branch is not None and head in on_branch:
            return on_branch[head]
        child = self._child.get(head)
        return None if child is None else child.sha


def _rank(c: Commit, on_chain: set[str]) -> tuple[bool, int, str]:
    return (c.sha in on_chain, c.time, c.sha)


def account(
    spend: Iterable[Spend],
    history: History,
    *,
    weeks: int,
    purposes: Iterable[str],
    since: datetime | None = None,
    top: int = 10,
) -> InterestReport:
    """The report over ``spend`` (every call of the repository: the AI-assisted commits
    come from all of them; the figures from those at or after ``since``)."""
    rework_purposes = {p.lower() for p in purposes}
    land = Landing(history)
    calls = [(s, land(s.branch, s.head)) for s in spend]
    ai = {sha for _, sha in calls if sha is not None}
    window = weeks * WEEK
    rework = _rework(history, ai, window)
    periods: dict[tuple[str, str], Period] = {}
    for s, sha in calls:
        if since is not None and s.ts < since:
            continue
        key = (s.project, s.ts.strftime("%Y-%m"))
        period = periods.setdefault(key, Period(*key))
        if s.purpose is not None and s.purpose.lower() in rework_purposes:
            period.interest += s.cost
            period.tagged += s.cost
        elif sha is None:
            period.unlanded += s.cost
        elif sha in rework:
            period.interest += s.cost
        else:
            period.principal += s.cost
        if sha in rework:
            rework[sha].spend += s.cost
    floor = since.timestamp() if since is not None else None
    report = InterestReport(weeks, [periods[k] for k in sorted(periods)])
    _lines(report, history, ai, window, floor)
    chosen = [r for r in rework.values() if floor is None or r.time >= floor]
    chosen.sort(key=lambda r: (-r.spend, -r.lines, r.sha))
    report.rework = chosen[:top]
    return report


def _rework(history: History, ai: set[str], window: int) -> dict[str, ReworkCommit]:
    """The rework commits, with the AI-assisted lines each rewrote."""
    found: dict[str, ReworkCommit] = {}
    for sha, change in history.changes.items():
        commit = history.commits.get(sha)
        if commit is None or commit.merge:
            continue
        removed = change.removed_from.items()
        lines = sum(n for a, n in removed if _recent(history, a, commit, ai, window))
        reverted = commit.reverts
        if reverted is not None and not _recent(history, reverted, commit, ai, window):
            reverted = None
        if lines or reverted:
            found[sha] = ReworkCommit(sha, commit.time, lines, reverted)
    return found


def _recent(history: History, sha: str, later: Commit, ai: set[str], window: int) -> bool:
    """Whether ``sha`` is a non-merge AI-assisted commit at most ``window`` s before ``later``."""
    if sha not in ai or sha == later.sha:
        return False
    commit = history.commits.get(sha)
    return commit is not None and not commit.merge and 0 <= later.time - commit.time <= window


def _lines(
    report: InterestReport, history: History, ai: set[str], window: int, floor: float | None
) -> None:
    """Lines added by AI-assisted commits (since ``floor``), and how many of them a later
    commit removed within the window."""
    counted: set[str] = set()
    for sha in ai:
        commit = history.commits.get(sha)
        change = history.changes.get(sha)
        if commit is None or commit.merge or change is None:
            continue
        if floor is not None and commit.time < floor:
            continue
        counted.add(sha)
        report.ai_lines += change.added
    report.ai_commits = len(counted)
    rewritten: defaultdict[str, int] = defaultdict(int)
    for sha, change in history.changes.items():
        later = history.commits.get(sha)
        if later is None or later.merge:
            continue
        for origin, n in change.removed_from.items():
            if origin in counted and _recent(history, origin, later, ai, window):
                rewritten[origin] += n
    report.rewritten_lines = sum(rewritten.values())
