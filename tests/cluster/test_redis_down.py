"""Redis goes away mid-run, then comes back: each feature's documented behaviour, no 500s.

The gateway's Redis here is a private ``redis-server`` on a Unix socket that
the test kills (the machine's shared Redis is never touched).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx2 as httpx
import pytest

from tests.cluster.conftest import PrivateRedis, state_config
from tests.conftest import ACME_KEY, GatewayFactory, Harness
from tests.trust.test_trust_e2e import action, api, cached, trust_config
from tollhouse.simulator import Simulator


def chat(gateway: Harness, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {ACME_KEY}", **headers},
        timeout=30,
    )


def metric(gateway: Harness, name: str) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    found = [line for line in text.splitlines() if line.startswith(name)]
    assert found, f"{name} is not exported"
    return float(found[0].rsplit(" ", 1)[1])


def logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.name == "tollhouse.cluster" and text in r.message)


def test_redis_down_then_back(
    make_gateway: GatewayFactory,
    simulator: Simulator,
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tollhouse.cluster")
    config: dict[str, Any] = trust_config(simulator.url)
    config["state"] = state_config(
        simulator.url, "down:", url=private_redis.url, expected_instances=2, retry_s=0.05
    )["state"]
    config["providers"][0].update(rpm=6000, max_in_flight=8)
    gw = make_gateway(config)
    task = {"X-Tollhouse-Task": "outage"}
    assert chat(gw, **task, **{"X-Tollhouse-Step": "1"}).status_code == 200
    assert action(gw, "before").status_code == 201
    assert metric(gw, "tollhouse_state_up") == 1.0

    private_redis.kill()
    answered = [chat(gw).status_code for _ in range(10)]
    assert answered == [200] * 10  # limits: this instance's share, decided locally
    during = chat(gw, **task, **{"X-Tollhouse-Step": "2"})
    assert during.status_code == 200  # the step is kept, to be pushed when Redis is back
    refused = action(gw, "during")
    assert refused.status_code == 503  # idempotency refuses rather than risk a double effect
    assert "Redis" in refused.json()["error"]["message"]
    assert action(gw, "before").status_code == 503  # even a known key: it can't be checked
    gate = api(gw, "POST", "/gate", json={"task": "outage", "action": "pay", "irreversible": True})
    assert gate.status_code == 503  # the gate never allows what it can't see
    first, second = cached(gw, None, "while down"), cached(gw, None, "while down")
    assert second.headers.get("x-tollhouse-cache") != "hit"  # the cache is bypassed
    assert first.status_code == second.status_code == 200
    assert metric(gw, "tollhouse_state_up") == 0.0
    assert metric(gw, 'tollhouse_state_fallbacks_total{feature="limits"}') >= 10
    assert metric(gw, 'tollhouse_state_fallbacks_total{feature="idempotency"}') >= 2
    assert logged(caplog, "Redis is unreachable") == 1  # once, not per request

    private_redis.start()  # an empty Redis (no persistence here): what was in it is gone
    deadline = time.monotonic() + 20
    while metric(gw, "tollhouse_state_up") == 0.0:  # the next request after retry_s reconnects
        assert chat(gw).status_code == 200
        assert time.monotonic() < deadline, "the gateway never went back to Redis"
    assert logged(caplog, "Redis answers again") == 1
    assert action(gw, "after").status_code == 201
    steps = api(gw, "GET", "/tasks/outage").json()["steps"]
    assert [s["step"] for s in steps] == ["2"]  # step 2 pushed on recovery (1 died with Redis)
    assert metric(gw, "tollhouse_state_outages_total") == 1.0
