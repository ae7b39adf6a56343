"""An agent task's trajectory: its steps, what each read, and what is tainted.

Sans-io: steps in, taint out; no clock, no store. These are the semantics the
gate enforces, in full:

**Steps.** A step is one answered model call labelled with the task
(``X-Tollhouse-Task``). Its id is its ``X-Tollhouse-Step``. A call without one
gets the *next unused number*: counting up from the number of steps the task
has, plus one, the first number no step uses yet. It never takes an existing
step's id, so an unnumbered call never replaces a step (``2`` recorded first,
then an unnumbered call: ``3``).

**Re-runs.** A call naming a step id the task already has is a new run of that
step. It replaces the step's answer, its degradation, its inputs (this call's
``X-Tollhouse-Inputs``, or the default as of this call) and its clearance (a
verify or approval vouched for the old answer, not this one). It keeps the
step's place in the listing, which is display order only: taint never
depends on the order steps were recorded in.

**The input graph.** Each step reads other steps: its declared
``X-Tollhouse-Inputs`` (an empty header reads nothing), or by default every
step the task had when this run was recorded (the agent's context so far).
Declared inputs must name steps the task has already recorded: a typo or a step
not yet answered would read nothing and so hide taint, so it is a 400 in the
client's own dialect on a model call, as in the gate's ``"inputs"`` (when the
shared state is out of reach and the check can't be made, the call is answered
and the step reads the default, which hides nothing). A step may read itself
(a re-run refining its earlier answer). Re-runs can close cycles (``1``; ``2``
reading ``1``; ``1`` re-run reading ``2``): taint treats a cycle as any other
part of the graph.

**Taint.** A step is a taint *source* when its own answer was degraded (a
fallback model, a cache hit, an incomplete answer) and it is not cleared. A
step is *tainted by* every source reachable from it along what-read-what
edges, itself included: reachability over the graph as it is now, whatever
the order of recording, cycles included (in a cycle 1 ↔ 2 with 2 degraded,
both are tainted by 2). An action the gate is asked about reads its
``inputs`` (default: every step) and is tainted by what they are tainted by.

**Clearing.** ``verify`` (the primary re-ran the request and the caller
accepted the answer) removes a step's *own* degradation: it stops being a
source, but it can't vouch for the steps it read, so taint still flows
through it. ``approve`` (a person vouched for the step's output) endorses it:
it is tainted by nothing and taint stops flowing through it. An approval
outranks a later verify; a re-run clears both. Verify re-runs the step's
current run only: a request kept from an earlier run (by another instance,
before the step ran again elsewhere) is dropped, not used to vouch for it.

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
    """One labelled model call of a task (its latest run)."""

    id: str
    seq: int  # its place in the listing: when the id was first recorded
    degraded_because: str | None = None  # why its own answer was degraded; None: fresh
    inputs: tuple[str, ...] | None = None  # None: the default (see ``horizon``)
    request_id: str = ""
    cleared: str | None = None  # VERIFIED | APPROVED
    cleared_by: str | None = None
    similarity: float | None = None
    horizon: int = 0  # how many steps the task had when this run was recorded

    @property
    def own_degraded(self) -> bool:
        return self.degraded_because is not None

    @property
    def source(self) -> bool:
        """A taint source: degraded itself, and neither verified nor approved."""
        return self.own_degraded and self.cleared is None

    def reads_by_default(self, other: Step) -> bool:
        """Whether this run read ``other`` by default: it was there when this ran."""
        return self.inputs is None and other.seq < self.horizon and other.id != self.id


@dataclass
class Trajectory:
    """The steps of one task, listed in the order they were first recorded."""

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
        """Record a run of a step (None: the next unused number). An id seen before is a
        re-run: it replaces the step's answer, inputs and clearance, keeping its place."""
        step_id = step_id or self.next_id()
        old = self.steps.get(step_id)
        step = Step(
            step_id,
            old.seq if old is not None else len(self.steps),
            degraded_because,
            None if inputs is None else tuple(inputs),
            request_id,
            horizon=len(self.steps),
        )
        self.steps[step_id] = step
        return step

    def next_id(self) -> str:
        """The id of an unnumbered step: from the step count plus one, the first unused."""
        n = len(self.steps) + 1
        while str(n) in self.steps:
            n += 1
        return str(n)

    def unknown(self, ids: Iterable[str]) -> list[str]:
        """The ``ids`` that name no step of the task (a typo, a step not answered yet)."""
        return [i for i in ids if i not in self.steps]

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
        """Every step's tainted-by set: the sources reachable from it (itself included).

        Walked backwards from each source, to the steps that read it: a few sources
        each cost one pass over the graph, however the defaults fan in.
        """
        out: dict[str, set[str]] = {i: set() for i in self.steps}
        readers = self._explicit_readers()
        # Approved steps are left out of the walk: taint stops at them.
        by_default = sorted(
            (s for s in self.steps.values() if s.inputs is None and s.cleared != APPROVED),
            key=lambda s: -s.horizon,
        )
        for source in self.ordered():
            if source.source:
                for step_id in self._reaching(source, readers, by_default):
                    out[step_id].add(source.id)
        return {i: frozenset(v) for i, v in out.items()}

    def _explicit_readers(self) -> dict[str, list[Step]]:
        readers: dict[str, list[Step]] = {}
        for step in self.steps.values():
            if step.cleared != APPROVED:
                for i in step.inputs or ():
                    readers.setdefault(i, []).append(step)
        return readers

    def _reaching(
        self, source: Step, readers: dict[str, list[Step]], by_default: list[Step]
    ) -> set[str]:
        """The ids of the steps that read ``source``, directly or not (and its own)."""
        seen, todo = {source.id}, [source]
        lowest, taken = len(self.steps), 0  # default readers with horizon > lowest are in
        while todo:
            step = todo.pop()
            found = list(readers.get(step.id, ()))
            if step.seq < lowest:  # every default reader that ran after this step existed
                lowest = step.seq
                while taken < len(by_default) and by_default[taken].horizon > lowest:
                    found.append(by_default[taken])
                    taken += 1
            for reader in found:
                if reader.id not in seen:
                    seen.add(reader.id)
                    todo.append(reader)
        return seen

    def tainted_by(self, step_id: str) -> frozenset[str]:
        return self.taint()[step_id]

    def tainted_by_inputs(self, inputs: Iterable[str] | None) -> frozenset[str]:
        """What an action that read ``inputs`` (None: every step) is tainted by."""
        taint = self.taint()
        return frozenset().union(*taint.values()) if inputs is None else self._union(inputs, taint)

    @staticmethod
    def _union(ids: Iterable[str], taint: dict[str, frozenset[str]]) -> frozenset[str]:
        # Callers refuse unknown ids first (a 400); one here (an old ledger row) reads nothing.
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
