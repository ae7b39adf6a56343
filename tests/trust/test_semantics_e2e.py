"""The trajectory semantics of tollhouse/trust/trajectory.py, end to end (issue 13, 1-3).

Each test is a way an agent (careless or not) once got ``allow: true`` for an
irreversible action on a tainted trajectory: real SDKs, the gateway, the simulator
failing the primary so the ``smart`` chain answers from its fallback.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.conftest import ACME_KEY, GatewayFactory, Harness
from tests.trust.test_trust_e2e import PRIMARY, api, ask, client, trust_config
from tollhouse.agent import Task
from tollhouse.simulator import Simulator


@pytest.fixture
def gw(make_gateway: GatewayFactory, simulator: Simulator) -> Harness:
    return make_gateway(trust_config(simulator.url, unknown_task="hold"))


def degraded(sim: Simulator) -> None:
    """The next call's primary fails: the chain answers from its fallback."""
    sim.program("server_error", count=1, model=PRIMARY)


def steps(task: Task) -> dict[str, dict[str, Any]]:
    return {s["step"]: s for s in task.trajectory()["steps"]}


def test_an_unnumbered_step_never_overwrites_a_numbered_one(gw: Harness, faults: Simulator) -> None:
    with Task("unnumbered", base_url=gw.url) as task:
        c = client(gw, task)
        ask(c, "first")  # no step header: 1
        degraded(faults)
        with task.step("2"):
            assert ask(c, "second").headers["x-tollhouse-trust"] == "degraded"
        ask(c, "third")  # no step header: once "2", replacing the degraded step
        found = steps(task)
        assert list(found) == ["1", "2", "3"]
        assert found["2"]["own"] == "degraded" and found["3"]["tainted_by"] == ["2"]
        held = task.gate("wire-money", irreversible=True)
        assert (held["allow"], held["tainted_by"]) == (False, ["2"])
    with Task("starts-at-2", base_url=gw.url) as task:
        c = client(gw, task)
        degraded(faults)
        with task.step("2"):
            ask(c, "numbered first")
        ask(c, "unnumbered")  # the count plus one is 2, taken: 3
        assert list(steps(task)) == ["2", "3"]
        assert task.gate("wire-money", irreversible=True)["allow"] is False


def test_a_rerun_step_reading_a_later_degraded_step_is_tainted(
    gw: Harness, faults: Simulator
) -> None:
    with Task("rerun", base_url=gw.url) as task:
        c = client(gw, task)
        with task.step("plan", []):
            ask(c, "plan")
        degraded(faults)
        with task.step("search", ["plan"]):
            ask(c, "search")
        with task.step("plan", ["search"]):  # a new run of plan, reading search
            assert ask(c, "plan again").headers["x-tollhouse-trust"] == "full"
        found = steps(task)
        assert list(found) == ["plan", "search"]  # the re-run keeps its place
        assert (found["plan"]["inputs"], found["plan"]["tainted_by"]) == (["search"], ["search"])
        held = task.gate("publish", irreversible=True, inputs=["plan"])
        assert (held["allow"], held["tainted_by"]) == (False, ["search"])


def test_a_cycle_with_a_degraded_step_taints_both(gw: Harness, faults: Simulator) -> None:
    with Task("cycle", base_url=gw.url) as task:
        c = client(gw, task)
        with task.step("1", []):
            ask(c, "one")
        degraded(faults)
        with task.step("2", ["1"]):
            ask(c, "two")
        with task.step("1", ["2"]):  # 1 re-run reading 2: 1 -> 2 -> 1
            ask(c, "one again")
        found = steps(task)
        assert [found[s]["tainted_by"] for s in "12"] == [["2"], ["2"]]
        for inputs in (["1"], ["2"], None):
            assert task.gate("deploy", irreversible=True, inputs=inputs)["allow"] is False
        task.verify("2", accept=True)  # its own answer vouched for: nothing left
        assert task.gate("deploy", irreversible=True, inputs=["1"])["allow"] is True


def test_an_approved_step_stops_taint_flowing_through_it(gw: Harness, faults: Simulator) -> None:
    from tests.trust.test_trust_e2e import operator

    with Task("approve-flow", base_url=gw.url) as task:
        c = client(gw, task)
        degraded(faults)
        with task.step("search", []):
            ask(c, "search")
        with task.step("summary", ["search"]):
            ask(c, "summary")
        with task.step("act", ["summary"]):
            ask(c, "act")
        assert task.gate("send", irreversible=True, inputs=["act"])["allow"] is False
        approve = api(gw, "POST", "/tasks/approve-flow/steps/summary/approve", headers=operator(gw))
        assert approve.status_code == 200
        assert task.gate("send", irreversible=True, inputs=["act"])["allow"] is True
        assert task.gate("send", irreversible=True)["tainted_by"] == ["search"]  # still a source


def _typo_headers() -> dict[str, str]:
    return {"X-Tollhouse-Task": "typo", "X-Tollhouse-Step": "2", "X-Tollhouse-Inputs": "l"}


def test_a_mistyped_input_is_a_400_in_each_client_dialect(
    gw: Harness, simulator: Simulator
) -> None:
    with Task("typo", base_url=gw.url) as task, task.step("1"):
        ask(client(gw, task), "one")
    bills = len(simulator.bills())
    oa = openai.OpenAI(
        base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0, default_headers=_typo_headers()
    )
    with pytest.raises(openai.BadRequestError) as o_info:
        oa.chat.completions.create(model="smart", messages=[{"role": "user", "content": "x"}])
    assert "X-Tollhouse-Inputs: task 'typo' has no step 'l' (its steps: 1)" in str(o_info.value)
    an = anthropic.Anthropic(
        base_url=gw.url, api_key=ACME_KEY, max_retries=0, default_headers=_typo_headers()
    )
    with pytest.raises(anthropic.BadRequestError) as a_info:
        an.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    body: Any = a_info.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "has no step 'l'" in body["error"]["message"]
    gem = genai.Client(
        api_key=ACME_KEY,
        http_options=types.HttpOptions(
            base_url=gw.url,
            headers=_typo_headers(),
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    with pytest.raises(genai_errors.ClientError) as g_info:
        gem.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert (g_info.value.code, g_info.value.status) == (400, "INVALID_ARGUMENT")
    assert "has no step 'l'" in str(g_info.value.message)
    assert len(simulator.bills()) == bills  # refused before any provider was asked
    with Task("typo", base_url=gw.url) as task:
        assert list(steps(task)) == ["1"]  # and nothing recorded
        with task.step("2", ["1"]):  # spelt right, the same call goes through
            ask(client(gw, task), "two")
        assert list(steps(task)) == ["1", "2"]


def test_a_step_cannot_name_inputs_before_they_exist(gw: Harness) -> None:
    ahead = "has no step '2' \\(its steps: none\\)"
    with Task("ahead", base_url=gw.url) as task, task.step("1", ["2"]):
        with_inputs = client(gw, task)
        with pytest.raises(openai.BadRequestError, match=ahead):
            ask(with_inputs, "one")


def test_an_unknown_task_hold_says_the_task_is_unknown(gw: Harness) -> None:
    body = {"task": "never-called", "name": "refund", "payload": {}, "irreversible": True}
    held = api(gw, "POST", "/actions", json=body, headers={"Idempotency-Key": "k1"})
    assert held.status_code == 423
    message = held.json()["error"]["message"]
    assert "task 'never-called' is unknown (no model calls are recorded for it)" in message
    assert "step(s)" not in message
    assert held.json()["gate"]["trust"] == "unknown"


def test_the_graph_is_the_same_after_a_restart(
    faults: Simulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import KEY_ENV, PROVIDER_KEY
    from tollhouse.app import GATEWAY, create_app
    from tollhouse.settings import parse_settings
    from tollhouse.testing import BackgroundServer

    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    settings = parse_settings(trust_config(faults.url))
    ledger = tmp_path / "ledger.db"

    def taint(server: BackgroundServer) -> dict[str, list[str]]:
        with Task("reload", base_url=server.url) as task:
            return {s["step"]: s["tainted_by"] for s in task.trajectory()["steps"]}

    server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()
    try:
        with Task("reload", base_url=server.url) as task:
            c = client(Harness(server, ledger, settings), task)
            with task.step("1"):
                ask(c, "one")  # read nothing: nothing was there
            degraded(faults)
            with task.step("2"):
                ask(c, "two")
            with task.step("1"):
                ask(c, "one again")  # by default it read 2 this time
            with task.step("x", []):
                ask(c, "reads nothing")
            ask(c, "unnumbered")  # 3 steps: 4
        assert server.app is not None
        server.call(server.app[GATEWAY].settle())
        before = taint(server)
    finally:
        server.stop()
    assert before == {"1": ["2"], "2": ["2"], "x": [], "4": ["2"]}
    server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()
    try:
        assert taint(server) == before  # rebuilt from the ledger's rows, in the order they ran
    finally:
        server.stop()
