"""Trajectory semantics across instances sharing Redis (issue 13).

A step re-run on another instance replaces its answer everywhere: the first
instance's kept request is an earlier run's, so verifying with it would vouch
for an answer the gate no longer sees.
"""

from __future__ import annotations

from tests.conftest import GatewayFactory
from tests.state.test_trust import shared_config
from tests.trust.test_trust_e2e import PRIMARY, api, ask, client
from tollhouse.agent import Task
from tollhouse.simulator import Simulator


def test_verify_runs_only_the_steps_current_run(
    make_gateway: GatewayFactory, faults: Simulator, prefix: str
) -> None:
    a, b = (make_gateway(shared_config(faults.url, prefix)) for _ in range(2))
    with Task("rerun-elsewhere", base_url=a.url) as task, task.step("2"):
        for gw in (a, b):  # degraded on a, then re-run (degraded again) on b
            faults.program("server_error", count=1, model=PRIMARY)
            assert ask(client(gw, task)).headers["x-tollhouse-trust"] == "degraded"
    bills = len(faults.bills())
    stale = api(a, "POST", "/tasks/rerun-elsewhere/steps/2/verify", json={"accept": True})
    assert stale.status_code == 409, stale.text  # a's kept request is the first run's
    assert len(faults.bills()) == bills  # and nothing was re-run for it
    body = {"task": "rerun-elsewhere", "action": "pay", "irreversible": True}
    assert api(a, "POST", "/gate", json=body).json()["allow"] is False
    fresh = api(b, "POST", "/tasks/rerun-elsewhere/steps/2/verify", json={"accept": True})
    assert fresh.status_code == 200 and fresh.json()["verified"] is True
    assert api(a, "POST", "/gate", json=body).json()["allow"] is True
