"""The second gate: may an agent act on its trajectory?

Sans-io. The decision rests on the risk of the action and the provenance of
what it read, never on a model's confidence: an irreversible action on a
tainted trajectory is held; a reversible one passes, with the taint
reported so the agent (or its person) can decide.

>>> decide(None, irreversible=True, task="t1").allow   # no calls recorded: nothing vouched for
False
>>> decide(None, irreversible=True, task="t1", unknown="allow").trust
'unknown'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tollhouse.trust.trajectory import Trajectory


@dataclass(frozen=True, slots=True)
class GateDecision:
    """``{allow, trust, tainted_by, reasons}``, as the gate endpoint answers it."""

    allow: bool
    trust: str  # "full" | "degraded" | "unknown" (no model calls recorded for the task)
    tainted_by: tuple[str, ...]
    reasons: tuple[str, ...]
    irreversible: bool

    @property
    def held(self) -> bool:
        return not self.allow

    def held_because(self, action: str, task: str) -> str:
        """Why an action the gate held is held, in one sentence (the 423's message)."""
        if self.trust == "unknown":
            return (
                f"action {action!r} is held: task {task!r} is unknown (no model calls are "
                "recorded for it), so nothing vouches for what it read; check the task id"
            )
        return (
            f"action {action!r} is held: task {task!r} is tainted by step(s) "
            f"{', '.join(self.tainted_by)}; verify or approve them first"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "allow": self.allow,
            "trust": self.trust,
            "tainted_by": list(self.tainted_by),
            "reasons": list(self.reasons),
        }


def decide(
    trajectory: Trajectory | None,
    *,
    irreversible: bool,
    task: str,
    inputs: Iterable[str] | None = None,
    unknown: str = "hold",
) -> GateDecision:
    """The gate's answer for an action of ``task`` that read ``inputs`` (None: every step).

    A task with no recorded calls is ``unknown``: usually a mistyped task id, so its
    irreversible actions are held unless ``unknown == "allow"`` (the gate fails closed).
    """
    if trajectory is None or not trajectory.steps:
        why = f"no model calls are recorded for task {task!r}"
        if irreversible and unknown != "allow":
            return GateDecision(False, "unknown", (), (_unknown_held(why, task),), irreversible)
        return GateDecision(True, "unknown", (), (why + "; nothing taints it",), irreversible)
    tainted = trajectory.tainted_by_inputs(inputs)
    order = sorted(tainted, key=lambda s: trajectory.steps[s].seq)
    if not order:
        return GateDecision(True, "full", (), (), irreversible)
    reasons = [_source_reason(trajectory, s) for s in order]
    if irreversible:
        reasons.append(
            "held: the action is irreversible and the trajectory is tainted; verify the steps "
            f"(POST /tollhouse/v1/tasks/{task}/steps/STEP/verify) or have a person approve "
            f"them (tollhouse approve {task} STEP)"
        )
    else:
        reasons.append("allowed: the action is reversible; the taint is reported, not enforced")
    return GateDecision(not irreversible, "degraded", tuple(order), tuple(reasons), irreversible)


def _unknown_held(why: str, task: str) -> str:
    return (
        f"held: {why}, so nothing vouches for what this irreversible action read; check the "
        f"task id (the calls carry X-Tollhouse-Task: {task}), or set trust.unknown_task = "
        '"allow" for agents that act before any model call'
    )


def _source_reason(trajectory: Trajectory, step_id: str) -> str:
    step = trajectory.steps[step_id]
    return f"step {step_id}: {step.degraded_because}"
