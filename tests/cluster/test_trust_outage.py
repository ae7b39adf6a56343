"""Trust state through a Redis outage and restart, under concurrent traffic, on several instances.

The gateways' Redis is a private ``redis-server`` on a Unix socket that the
tests kill and start again (the machine's shared Redis is never touched);
with ``appendonly yes`` it comes back with what it was told, without it empty.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis

from tests.cluster.conftest import PrivateRedis, state_config
from tests.conftest import ACME_KEY, GatewayFactory, Harness
from tests.trust.test_trust_e2e import ACME, PRIMARY, action, api, trust_config
from tollhouse.simulator import Simulator

PREFIX = "outage:"


@pytest.fixture
def durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    here = Path(tmp_path_factory.mktemp("redis", numbered=True))
    server = PrivateRedis(here / "r.sock", appendonly=True).start()
    yield server
    server.kill()


def config(sim_url: str, redis_url: str) -> dict[str, Any]:
    found: dict[str, Any] = trust_config(sim_url)
    found["state"] = state_config(sim_url, PREFIX, url=redis_url, retry_s=0.05)["state"]
    return found


def step(gateway: Harness, task: str, n: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "smart", "messages": [{"role": "user", "content": f"step {n}"}]},
        headers={
            "Authorization": f"Bearer {ACME_KEY}",
            "X-Tollhouse-Task": task,
            "X-Tollhouse-Step": n,
        },
        timeout=30,
    )


def degraded_step(gateway: Harness, sim: Simulator, task: str, n: str) -> None:
    sim.program("server_error", count=1, model=PRIMARY)
    answered = step(gateway, task, n)
    assert answered.status_code == 200 and answered.headers["x-tollhouse-trust"] == "degraded"


def gate(gateway: Harness, task: str) -> httpx.Response:
    body = {"task": task, "action": "pay", "irreversible": True}
    return api(gateway, "POST", "/gate", json=body, headers={"X-Tollhouse-Project": "acme"})


def events(server: PrivateRedis, task: str) -> list[dict[str, Any]]:
    """The trajectory's events as Redis holds them (duplicates included)."""
    r = redis.Redis(unix_socket_path=str(server.socket), socket_timeout=5)
    try:
        return [json.loads(e) for e in r.lrange(f"{PREFIX}traj:acme\x1f{task}", 0, -1)]
    finally:
        r.close()


def test_concurrent_gate_and_action_traffic_after_an_outage_pushes_each_step_once(
    make_gateway: GatewayFactory,
    faults: Simulator,
    durable_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = make_gateway(config(faults.url, durable_redis.url))
    assert step(gw, "t", "1").status_code == 200
    durable_redis.kill()
    degraded_step(gw, faults, "t", "2")  # answered, kept to be pushed once Redis is back
    for n in "345":
        assert step(gw, "t", n).status_code == 200
    durable_redis.start()

    def call(i: int) -> tuple[str, int, Any]:
        if i % 4 == 3:
            answer = action(gw, f"k{i}", task="t")
            return "action", answer.status_code, answer.json()
        answer = gate(gw, "t")
        return "gate", answer.status_code, answer.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(48)))
    for kind, status, body in answers:
        assert status in (200, 423, 503), (kind, status, body)  # never a 500 (IndexError)
        if kind == "gate" and status == 200:  # never allowed: step 2 taints it
            assert (body["allow"], body["tainted_by"]) == (False, ["2"])
        if kind == "action":
            assert status != 201  # held (423) or refused while Redis counts as down (503)
    assert any(status != 503 for _, status, _ in answers) or gate(gw, "t").status_code == 200
    pushed = [(e["step"], e["id"]) for e in events(durable_redis, "t")]
    assert [s for s, _ in pushed] == ["1", "2", "3", "4", "5"]  # each once, in order
    assert len({i for _, i in pushed}) == 5
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]


def test_a_step_answered_while_redis_was_down_holds_the_task_on_every_instance(
    make_gateway: GatewayFactory, faults: Simulator, durable_redis: PrivateRedis
) -> None:
    slow = config(faults.url, durable_redis.url)
    slow["state"]["retry_s"] = 1.5  # a tries Redis again well after b and c do
    a = make_gateway(slow)
    b, c = (make_gateway(config(faults.url, durable_redis.url)) for _ in range(2))
    assert step(a, "job", "1").status_code == 200
    first = gate(b, "job")
    assert first.status_code == 200 and first.json()["allow"] is True, first.text
    durable_redis.kill()
    degraded_step(a, faults, "job", "2")  # only a knows of it
    for gateway in (a, b, c):
        assert gate(gateway, "job").status_code == 503  # can't see: says so, never allows
    durable_redis.start()
    # a makes no further call. Until it has pushed step 2 (and beaten, after that) the
    # others hold: a's last beat is older than the restarted Redis.
    deadline = time.monotonic() + 30
    while (answer := gate(b, "job")).status_code == 503:
        assert time.monotonic() < deadline, "b never decided again"
        time.sleep(0.02)
    assert (answer.json()["allow"], answer.json()["tainted_by"]) == (False, ["2"])
    for gateway in (a, b, c):
        held = gate(gateway, "job").json()
        assert (held["allow"], held["tainted_by"]) == (False, ["2"])
    assert [s["step"] for s in api(c, "GET", "/tasks/job").json()["steps"]] == ["1", "2"]


def test_an_instance_not_heard_from_holds_irreversible_actions_until_forgotten(
    make_gateway: GatewayFactory, faults: Simulator, durable_redis: PrivateRedis
) -> None:
    cfg = config(faults.url, durable_redis.url)
    cfg["state"]["lease_ttl_s"] = 3.0
    b = make_gateway(cfg)
    assert step(b, "seen", "1").status_code == 200
    assert gate(b, "seen").json()["allow"] is True
    r = redis.Redis(unix_socket_path=str(durable_redis.socket), socket_timeout=5)
    now_ms = int(r.time()[0]) * 1000
    r.zadd(f"{PREFIX}instances", {"cut-off": now_ms - 2000})  # beat 2 s ago, then silence
    r.close()
    refused = gate(b, "seen")
    assert refused.status_code == 503 and "cut-off" in refused.json()["error"]["message"]
    body = {"task": "seen", "action": "draft", "irreversible": False}
    undoable = api(b, "POST", "/gate", json=body, headers={"X-Tollhouse-Project": "acme"})
    assert undoable.json()["allow"] is True  # only irreversible actions wait
    deadline = time.monotonic() + 30  # lease_ttl_s of silence: taken as crashed, forgotten
    while (answer := gate(b, "seen")).status_code == 503:
        assert "cut-off" in answer.json()["error"]["message"]
        assert time.monotonic() < deadline, "a silent instance was never forgotten"
        time.sleep(0.1)
    assert answer.json()["allow"] is True


def test_the_recording_instance_never_allows_before_its_backlog_is_pushed(
    make_gateway: GatewayFactory, faults: Simulator, durable_redis: PrivateRedis
) -> None:
    a = make_gateway(config(faults.url, durable_redis.url))
    assert step(a, "own", "1").status_code == 200
    durable_redis.kill()
    degraded_step(a, faults, "own", "2")
    durable_redis.start()
    deadline = time.monotonic() + 30
    while (answer := gate(a, "own")).status_code == 503:
        assert time.monotonic() < deadline, "the gate never saw Redis again"
        time.sleep(0.02)
    assert (answer.json()["allow"], answer.json()["tainted_by"]) == (False, ["2"])


def test_claims_and_taint_survive_a_redis_restart_with_appendonly(
    make_gateway: GatewayFactory, faults: Simulator, durable_redis: PrivateRedis
) -> None:
    gw = make_gateway(config(faults.url, durable_redis.url))
    degraded_step(gw, faults, "kept", "1")
    first = action(gw, "once", task="other", irreversible=False)
    assert first.status_code == 201
    done = api(
        gw, "PUT", f"/actions/{first.json()['id']}", json={"status": "succeeded"}, headers=ACME
    )
    assert done.status_code == 200
    pending = action(gw, "pending", task="other", irreversible=False)
    assert pending.status_code == 201
    durable_redis.kill()  # SIGKILL: no shutdown save, only what the append-only file has
    durable_redis.start()
    deadline = time.monotonic() + 30
    while (again := action(gw, "once", task="other", irreversible=False)).status_code == 503:
        assert time.monotonic() < deadline, "the gateway never went back to Redis"
        time.sleep(0.02)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]  # never a 201
    assert action(gw, "pending", task="other", irreversible=False).status_code == 409
    held = gate(gw, "kept").json()
    assert (held["allow"], held["tainted_by"]) == (False, ["1"])


def test_a_redis_without_persistence_is_reported_at_start(
    make_gateway: GatewayFactory,
    simulator: Simulator,
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tollhouse.cluster")
    make_gateway(config(simulator.url, private_redis.url))
    warned = [r.message for r in caplog.records if "does not persist" in r.message]
    assert len(warned) == 1 and "appendonly yes" in warned[0]
    assert "claimed again" in warned[0]


def test_a_persisting_redis_is_not_warned_about(
    make_gateway: GatewayFactory,
    simulator: Simulator,
    durable_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tollhouse.cluster")
    make_gateway(config(simulator.url, durable_redis.url))
    assert not [r for r in caplog.records if "persist" in r.message]
