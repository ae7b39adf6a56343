"""Trust state on Redis: the same answers from every instance.

The trust suite's own end-to-end tests run again here against a gateway
whose store is Redis (same behaviour, other store); the tests below them
spread one agent's calls over three instances.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.cluster.conftest import state_config
from tests.conftest import GatewayFactory, Harness
from tests.trust.test_trust_e2e import (  # noqa: F401  (re-run against Redis)
    ACME,
    action,
    api,
    cached,
    client,
    operator,
    six_steps,
    table,
    test_a_cache_hit_taints_the_step_it_answers,
    test_a_caller_with_no_project_sees_the_one_project_that_has_the_task,
    test_a_fallback_at_step_3_taints_steps_4_to_6,
    test_a_held_action_is_not_claimed_until_cleared,
    test_cache_hits_and_validity_misses,
    test_degraded_answers_are_never_cached,
    test_explicit_inputs_narrow_the_taint,
    test_fifty_concurrent_claims_of_one_key_have_one_winner,
    test_idempotent_action_replays_its_outcome,
    test_keys_are_isolated_across_projects,
    test_two_projects_task_ids_never_meet,
    test_verify_reruns_on_the_primary_and_clears_the_taint,
    trust_config,
)
from tollhouse.agent import Task
from tollhouse.simulator import Simulator
from tollhouse.trust import http as trust_http


def shared_config(sim_url: str, prefix: str) -> dict[str, object]:
    config = trust_config(sim_url)
    config["state"] = state_config(sim_url, prefix)["state"]
    return config


@pytest.fixture
def gw(make_gateway: GatewayFactory, simulator: Simulator, prefix: str) -> Harness:
    return make_gateway(shared_config(simulator.url, prefix))


@pytest.fixture
def three(make_gateway: GatewayFactory, simulator: Simulator, prefix: str) -> list[Harness]:
    return [make_gateway(shared_config(simulator.url, prefix)) for _ in range(3)]


def test_an_idempotency_key_is_one_claim_on_every_instance(three: list[Harness]) -> None:
    a, b, c = three
    first = action(a, "pay-1")
    assert first.status_code == 201
    assert action(b, "pay-1").status_code == 409  # in flight, as b sees it too
    assert action(c, "pay-1", payload={"eur": 99}).status_code == 422  # another payload
    done = api(
        c, "PUT", f"/actions/{first.json()['id']}", json={"status": "succeeded"}, headers=ACME
    )
    assert done.status_code == 200
    twice = api(a, "PUT", f"/actions/{first.json()['id']}", json={"status": "failed"}, headers=ACME)
    assert twice.status_code == 409  # reported once, wherever
    replays = [action(g, "pay-1") for g in three]
    assert {(r.status_code, r.headers["Idempotent-Replayed"], r.json()["id"]) for r in replays} == {
        (200, "true", first.json()["id"])
    }


def test_concurrent_claims_across_instances_have_one_winner(three: list[Harness]) -> None:
    with ThreadPoolExecutor(30) as pool:
        statuses = sorted(pool.map(lambda i: action(three[i % 3], "race").status_code, range(30)))
    assert statuses == [201] + [409] * 29


def test_an_abandoned_action_frees_its_key_everywhere(three: list[Harness]) -> None:
    a, b, _ = three
    first = action(a, "retry-me")
    api(b, "PUT", f"/actions/{first.json()['id']}", json={"status": "abandoned"}, headers=ACME)
    again = action(b, "retry-me")
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]


def test_taint_recorded_on_one_instance_holds_the_gate_on_another(
    three: list[Harness],
    faults: Simulator,
) -> None:
    a, b, c = three
    with Task("spread", base_url=a.url) as task:
        six_steps(a, faults, task, {})
    a.server.call(_settled(a))
    gate = api(b, "POST", "/gate", json={"task": "spread", "action": "pay", "irreversible": True})
    assert (gate.json()["allow"], gate.json()["tainted_by"]) == (False, ["3"])
    approved = api(
        c, "POST", "/tasks/spread/steps/3/approve", json={"by": "ops"}, headers=operator(c)
    )
    assert approved.status_code == 200, approved.text
    again = api(a, "POST", "/gate", json={"task": "spread", "action": "pay", "irreversible": True})
    assert again.json()["allow"] is True
    seen = {g.url: api(g, "GET", "/tasks/spread").json()["steps"] for g in three}
    assert len({repr(v) for v in seen.values()}) == 1  # one trajectory, whoever is asked


def test_a_degraded_answer_is_on_record_everywhere_before_the_client_has_it(
    three: list[Harness],
    faults: Simulator,
) -> None:
    """No settling in between: the step reaches Redis before its answer's last byte, so the
    agent's very next call, its gate on another instance, already sees the taint. A's store
    is made slow, so a step recorded after the reply would arrive too late for that gate."""
    a, b, _ = three
    assert a.server.app is not None
    store = a.server.app[trust_http.TRUST].store
    record_step = store.record_step

    async def slow_record_step(*args: Any, **kw: Any) -> Any:
        await asyncio.sleep(0.3)  # a slow Redis, not synchronisation
        return await record_step(*args, **kw)

    store.record_step = slow_record_step
    with Task("quick", base_url=a.url) as task:
        c = client(a, task)
        faults.program("server_error", count=1, model="gpt-4o-mini")
        with task.step("1"):
            raw = c.chat.completions.with_raw_response.create(
                model="smart", messages=[{"role": "user", "content": "go"}]
            )
        assert raw.headers["x-tollhouse-trust"] == "degraded"
        gate = api(
            b, "POST", "/gate", json={"task": "quick", "action": "pay", "irreversible": True}
        )
    assert (gate.json()["allow"], gate.json()["tainted_by"]) == (False, ["1"])


def test_an_answer_cached_by_one_instance_is_a_hit_on_another(
    three: list[Harness], simulator: Simulator
) -> None:
    a, b, _ = three
    cached(a, "commit-x")
    a.server.call(_settled(a))
    hit = cached(b, "commit-x")
    assert hit.headers["x-tollhouse-cache"] == "hit"


async def _settled(gateway: Harness) -> None:
    from tollhouse.trust import http as trust_http

    assert gateway.server.app is not None
    await gateway.server.app[trust_http.TRUST].settle()


def test_a_project_whose_trajectory_expired_is_not_an_owner_any_more(
    gw: Harness,
    faults: Simulator,
    prefix: str,
) -> None:
    """The set of a task's projects outlives one project's trajectory: it must not count."""
    import redis

    from tests.cluster.conftest import REDIS_URL
    from tollhouse.trust.trajectory import task_key

    for project in ("acme", "beta"):
        with Task("both", base_url=gw.url, project=project) as task, task.step("1"):
            # No virtual key: the header decides whose task it is (a key would).
            client(gw, task, key=f"sk-{project}-own").chat.completions.create(
                model="smart", messages=[{"role": "user", "content": project}]
            )
    assert api(gw, "GET", "/tasks/both").status_code == 409  # whose?
    r = redis.Redis.from_url(REDIS_URL)
    try:
        assert r.delete(f"{prefix}traj:{task_key('acme', 'both')}") == 1  # as if it expired
    finally:
        r.close()
    view = api(gw, "GET", "/tasks/both")
    assert view.status_code == 200 and view.json()["project"] == "beta"
