"""An agent task's trajectory: its steps, what each read, and what is tainted.

Sans-io: steps in, taint out; no clock, no store. A step is a taint
*source* when its own answer was degraded (a fallback model, a cache hit,
an incomplete answer) and nobody verified it. A step is *tainted* when it is
a source or when any step it read is tainted, transitively, like taint
tracking in security analysis. What a step read is its explicit
``X-Tollhouse-Inputs``, or by default every earlier step of the task.

Clearing taint: ``verify`` (the primary re-ran the request and the caller
accepted the answer) removes a step's *own* degradation; it can't vouch for
the steps it read, so inherited taint still flows through it. ``approve``
(a person vouched for the step's output) endorses the step: it is clean and
stops taint flowing through it.

A trajectory belongs to a project: the project of its model calls (header,
key or process, as for the ledger). Two projects' task ``t1`` are two
trajectories, kept under :func:`task_key`.

>>> t = Trajectory(task_key("acme", "t1"))
>>> for n in "123": _ = t.record(n, degraded_because="fallback" if n == "2" else None)
>>> sorted(t.tainted_by("3"))
['2']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

VERIFIED = "verified"
APPROVED = "approved"
_SCOPE = "\x1f"  # no header value or config name carries it


def task_key(project: str, task: str) -> str:
    """Where ``project``'s task ``task`` is kept (stores and audit rows use it)."""
    return f"{project}{_SCOPE}{task}"


def task_of(key: str) -> tuple[str, str]:
    """``(project, task)`` of a :func:`task_key` (``("", key)`` for an unscoped one)."""
    project, sep, task = key.partition(_SCOPE)
    return (project, task) if sep else ("", key)


@dataclass(slots=True)
class Step:
    """One labelled model call of a task."""

    id: str
    seq: int
    degraded_because: str | None = None  # why its own answer was degraded; None: fresh
    inputs: tuple[str, ...] | None = None  # None: every earlier step
    request_id: str = ""
    cleared: str | None = None  # VERIFIED | APPROVED
    cleared_by: str | None = None
    similarity: float | None = None

    @property
    def own_degraded(self) -> bool:
        return self.degraded_because is not None

    @property
    def source(self) -> bool:
        """A taint source: degraded itself, and neither verified nor approved."""
        return self.own_degraded and self.cleared is None


@dataclass
class Trajectory:
    """The steps of one task, in the order they were first recorded."""

    task: str
    steps: dict[str, Step] = field(default_factory=dict)
    updated: float = 0.0  # when a step was last recorded or cleared (caller's clock)

    def record(
        self,
        step_id: str | None = None,
        *,
        degraded_because: str | None = None,
        inputs: Iterable[str] | None = None,
        request_id: str = "",
    ) -> Step:
        """Record a step's answer. An id seen before is a re-run: it replaces the
        step's answer and clears its verification, keeping its place."""
        step_id = step_id or str(len(self.steps) + 1)
        old = self.steps.get(step_id)
        seq = old.seq if old is not None else len(self.steps)
        step = Step(
            step_id,
            seq,
            degraded_because,
            None if inputs is None else tuple(inputs),
            request_id,
        )
        self.steps[step_id] = step
        return step

    def clear(
        self, step_id: str, how: str, by: str | None = None, similarity: float | None = None
    ) -> Step:
        step = self.steps[step_id]
        if step.cleared != APPROVED:  # an approval outranks a later verify
            step.cleared, step.cleared_by = how, by
        if similarity is not None:
            step.similarity = similarity
        return step

    def taint(self) -> dict[str, frozenset[str]]:
        """Every step's tainted-by set: the unverified degraded steps it depends on."""
        out: dict[str, frozenset[str]] = {}
        so_far: frozenset[str] = frozenset()  # the union over all earlier steps
        for step in sorted(self.steps.values(), key=lambda s: s.seq):
            if step.cleared == APPROVED:
                mine: frozenset[str] = frozenset()
            else:
                read = so_far if step.inputs is None else self._union(step.inputs, out)
                mine = read | {step.id} if step.source else read
            out[step.id] = mine
            so_far = so_far | mine
        return out

    def tainted_by(self, step_id: str) -> frozenset[str]:
        return self.taint()[step_id]

    def tainted_by_inputs(self, inputs: Iterable[str] | None) -> frozenset[str]:
        """What an action that read ``inputs`` (None: every step) is tainted by."""
        taint = self.taint()
        return frozenset().union(*taint.values()) if inputs is None else self._union(inputs, taint)

    @staticmethod
    def _union(ids: Iterable[str], taint: dict[str, frozenset[str]]) -> frozenset[str]:
        # An input the task never recorded (or a later step) carries no known taint.
        return frozenset().union(*(taint.get(i, frozenset()) for i in ids))

    def ordered(self) -> list[Step]:
        return sorted(self.steps.values(), key=lambda s: s.seq)

    def as_dict(self) -> dict[str, object]:
        taint = self.taint()
        project, task = task_of(self.task)
        return {
            "task": task,
            "project": project,
            "trust": "degraded" if any(taint.values()) else "full",
            "steps": [
                {
                    "step": s.id,
                    "own": "degraded" if s.own_degraded else "full",
                    "degraded_because": s.degraded_because,
                    "inputs": None if s.inputs is None else list(s.inputs),
                    "cleared": s.cleared,
                    "cleared_by": s.cleared_by,
                    "similarity": s.similarity,
                    "tainted_by": sorted(taint[s.id], key=self._order),
                    "request_id": s.request_id,
                }
                for s in self.ordered()
            ],
        }

    def _order(self, step_id: str) -> int:
        step = self.steps.get(step_id)
        return step.seq if step is not None else -1


def parse_inputs(raw: str) -> tuple[str, ...]:
    """``X-Tollhouse-Inputs: 1, 3`` → ``("1", "3")``; an empty header means "read nothing"."""
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
