"""Taint through a trajectory: sources, transitive inputs, verify and approve."""

from __future__ import annotations

from tollhouse.trust.trajectory import APPROVED, VERIFIED, Trajectory, parse_inputs

FALLBACK = "answered by the fallback xai/grok-3-mini instead of openai/gpt-4o-mini"


def six_steps(inputs: dict[str, tuple[str, ...]] | None = None) -> Trajectory:
    t = Trajectory("t1")
    for n in "123456":
        t.record(
            n,
            degraded_because=FALLBACK if n == "3" else None,
            inputs=(inputs or {}).get(n),
        )
    return t


def test_a_degraded_step_taints_every_later_step_by_default() -> None:
    taint = six_steps().taint()
    assert {s: sorted(v) for s, v in taint.items()} == {
        "1": [],
        "2": [],
        "3": ["3"],
        "4": ["3"],
        "5": ["3"],
        "6": ["3"],
    }


def test_explicit_inputs_narrow_the_taint_transitively() -> None:
    # 4 read only 1; 5 read 4; 6 read 5 and 3: only 6 (and 3 itself) are tainted.
    t = six_steps({"4": ("1",), "5": ("4",), "6": ("5", "3")})
    taint = t.taint()
    assert [s for s in "123456" if taint[s]] == ["3", "6"]
    assert t.tainted_by("6") == {"3"}


def test_taint_flows_through_a_chain_of_explicit_inputs() -> None:
    t = six_steps({"4": ("3",), "5": ("4",), "6": ("5",)})
    assert [sorted(t.tainted_by(s)) for s in "456"] == [["3"], ["3"], ["3"]]


def test_an_empty_inputs_list_reads_nothing() -> None:
    t = six_steps({"4": (), "5": ("4",), "6": ("5",)})
    assert [t.tainted_by(s) for s in "456"] == [frozenset()] * 3


def test_verify_clears_the_source_and_so_its_dependants() -> None:
    t = six_steps()
    t.clear("3", VERIFIED, "openai/gpt-4o-mini", 0.93)
    assert not any(t.taint().values())
    assert t.steps["3"].similarity == 0.93


def test_verify_of_a_step_that_only_read_taint_does_not_clean_it() -> None:
    t = six_steps({"4": ("3",), "5": ("4",), "6": ("5",)})
    t.clear("4", VERIFIED)  # the primary re-ran 4 with the same (tainted) inputs
    assert t.tainted_by("5") == {"3"}


def test_approval_endorses_a_step_and_stops_taint_through_it() -> None:
    t = six_steps({"4": ("3",), "5": ("4",), "6": ("5",)})
    t.clear("4", APPROVED, "alice")
    assert [t.tainted_by(s) for s in "456"] == [frozenset()] * 3
    assert t.tainted_by("3") == {"3"}  # the source itself is still unverified


def test_a_rerun_step_keeps_its_place_and_loses_its_clearance() -> None:
    t = six_steps()
    t.clear("3", VERIFIED)
    t.record("3", degraded_because="the answer was incomplete (the stream broke off)")
    assert [s.id for s in t.ordered()] == list("123456")
    assert t.tainted_by("5") == {"3"}


def test_unlabelled_steps_are_numbered() -> None:
    t = Trajectory("t")
    assert [t.record().id for _ in range(3)] == ["1", "2", "3"]


def test_action_inputs() -> None:
    t = six_steps()
    assert t.tainted_by_inputs(None) == {"3"}
    assert t.tainted_by_inputs(["1", "2"]) == frozenset()
    assert t.tainted_by_inputs(["nope"]) == frozenset()


def test_parse_inputs() -> None:
    assert parse_inputs(" 1, 3,,3 ") == ("1", "3")
    assert parse_inputs("") == ()


def test_an_unnumbered_step_takes_the_next_unused_number() -> None:
    t = Trajectory("t")
    t.record("2", degraded_because=FALLBACK)
    assert t.record().id == "3"  # the count plus one (2) is taken
    assert t.record("x").id == "x" and t.record().id == "4"  # 3 steps: 4
    assert t.steps["2"].own_degraded


def test_taint_is_reachability_whatever_the_recording_order() -> None:
    t = Trajectory("t")
    t.record("plan", inputs=())
    t.record("search", degraded_because=FALLBACK, inputs=("plan",))
    t.record("plan", inputs=("search",))  # a re-run reading a step first recorded later
    assert t.tainted_by("plan") == {"search"}
    assert [s.id for s in t.ordered()] == ["plan", "search"]


def test_a_cycle_taints_every_step_on_it() -> None:
    t = Trajectory("t")
    t.record("1", inputs=())
    t.record("2", degraded_because=FALLBACK, inputs=("1",))
    t.record("1", inputs=("2",))
    t.record("3", inputs=("1",))
    assert [t.tainted_by(s) for s in "123"] == [{"2"}] * 3
    t.clear("1", APPROVED, "ann")
    assert [t.tainted_by(s) for s in "123"] == [frozenset(), {"2"}, frozenset()]


def test_a_default_rerun_reads_every_step_there_when_it_ran() -> None:
    t = Trajectory("t")
    t.record("1")
    t.record("2", degraded_because=FALLBACK)
    assert t.tainted_by("1") == frozenset()  # 1 ran before 2 existed
    t.record("1")  # re-run with the default: it read 2 this time
    assert t.tainted_by("1") == {"2"}
    t.record("3", inputs=())
    assert t.tainted_by("3") == frozenset()  # reads nothing; 1's re-run did not read 3


def test_unknown_ids() -> None:
    t = Trajectory("t")
    t.record("1")
    assert t.unknown(["1", "l", "2"]) == ["l", "2"]
