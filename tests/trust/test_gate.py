"""The gate: irreversible on taint is held, reversible passes with the taint reported."""

from __future__ import annotations

from tests.trust.test_trajectory import six_steps
from tollhouse.trust.gate import decide
from tollhouse.trust.trajectory import APPROVED, VERIFIED


def test_holds_an_irreversible_action_on_a_tainted_trajectory() -> None:
    d = decide(six_steps(), irreversible=True, task="t1")
    assert (d.allow, d.trust, d.tainted_by, d.held) == (False, "degraded", ("3",), True)
    assert d.reasons[0].startswith("step 3: answered by the fallback")
    assert "tollhouse approve t1" in d.reasons[-1]


def test_lets_a_reversible_action_pass_and_reports_the_taint() -> None:
    d = decide(six_steps(), irreversible=False, task="t1")
    assert (d.allow, d.trust, d.tainted_by) == (True, "degraded", ("3",))


def test_permits_an_irreversible_action_on_a_clean_trajectory() -> None:
    t = six_steps()
    t.clear("3", VERIFIED)
    d = decide(t, irreversible=True, task="t1")
    assert (d.allow, d.trust, d.tainted_by, d.reasons) == (True, "full", (), ())


def test_inputs_narrow_what_the_action_depends_on() -> None:
    d = decide(six_steps(), irreversible=True, task="t1", inputs=["1", "2"])
    assert d.allow and d.trust == "full"


def test_an_approved_step_no_longer_holds() -> None:
    t = six_steps()
    t.clear("3", APPROVED, "alice")
    assert decide(t, irreversible=True, task="t1").allow


def test_an_unknown_task_holds_irreversible_actions_by_default() -> None:
    d = decide(None, irreversible=True, task="nope")
    assert (d.allow, d.trust, d.tainted_by) == (False, "unknown", ())
    assert "check the task id" in d.reasons[0] and "X-Tollhouse-Task: nope" in d.reasons[0]


def test_an_unknown_task_passes_reversible_actions_and_when_allowed() -> None:
    assert decide(None, irreversible=False, task="nope").allow
    d = decide(None, irreversible=True, task="nope", unknown="allow")
    assert d.allow and d.trust == "unknown" and "no model calls" in d.reasons[0]


def test_as_dict_is_the_wire_shape() -> None:
    d = decide(six_steps(), irreversible=True, task="t1").as_dict()
    assert set(d) == {"allow", "trust", "tainted_by", "reasons"}
