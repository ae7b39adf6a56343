"""Trajectory semantics across instances sharing Redis (issue 13).

A step re-run on another instance replaces its answer everywhere: the first
instance's kept request is an earlier run's, so verifying with it would vouch
for an answer the gate no longer sees.
"""

from __future__ import annotations

import time

from tests.cluster.conftest import PrivateRedis, state_config
from tests.cluster.test_trust import shared_config
from tests.conftest import GatewayFactory
from tests.trust.test_trust_e2e import PRIMARY, api, ask, client, trust_config
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


def test_inputs_that_cant_be_checked_read_every_step(
    make_gateway: GatewayFactory, simulator: Simulator, private_redis: PrivateRedis
) -> None:
    """Redis down: a step's inputs can't be checked against its task, so the call is
    answered and the step reads every step so far (the default hides no taint)."""
    config = trust_config(simulator.url)
    config["state"] = state_config(simulator.url, "inputs:", url=private_redis.url, retry_s=0.05)[
        "state"
    ]
    gw = make_gateway(config)
    with Task("outage-inputs", base_url=gw.url) as task:
        with task.step("1"):
            ask(client(gw, task), "one")
        private_redis.kill()
        with task.step("2", ["typo"]):
            assert ask(client(gw, task), "two").headers["x-tollhouse-trust"] == "full"
        private_redis.start()  # empty (no persistence here): step 1 died with it
        deadline = time.monotonic() + 20
        while True:  # the next trust call after retry_s reconnects and pushes step 2
            view = api(gw, "GET", "/tasks/outage-inputs")
            if view.status_code == 200:
                break
            assert view.status_code == 503, view.text
            assert time.monotonic() < deadline, "the gateway never went back to Redis"
        assert [(s["step"], s["inputs"]) for s in view.json()["steps"]] == [("2", None)]
