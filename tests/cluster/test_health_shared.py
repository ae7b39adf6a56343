"""Per-deployment health shared by three gateways through one Redis (issue 15).

A circuit opened on one instance is honoured by the others (their requests
skip the sick model without sending it anything), and only that deployment:
its siblings keep answering everywhere, directly and as fallbacks.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import httpx2 as httpx
import pytest
import redis

from tests.cluster.conftest import REDIS_URL, state_config
from tests.conftest import ACME_KEY, GatewayFactory, Harness
from tests.test_capacity_e2e import attempts
from tollhouse.simulator import Simulator
from tollhouse.testing import free_port

SICK, SIBLING = "sick-model", "gpt-4o"
HEADERS = {"Authorization": f"Bearer {ACME_KEY}"}


def post(gateway: Harness, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=30)


def wait_for_key(key: str) -> None:
    """Marks are written beside the request that set them: a bounded readiness wait."""
    client = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + 10
    try:
        while not client.exists(key):
            assert time.monotonic() < deadline, f"{key} never reached Redis"
            time.sleep(0.01)
    finally:
        client.close()


def sent(sim: Simulator, model: str) -> int:
    return len([b for b in sim.bills() if b["model"] == model])


def test_a_sick_model_on_one_instance_leaves_its_siblings_serving_on_three(
    make_gateway: GatewayFactory, faults: Simulator, prefix: str
) -> None:
    config = state_config(faults.url, prefix)
    config["models"] = {"chain": {"chain": [f"openai/{SICK}", f"openai/{SIBLING}"]}}
    config["capacity"] = {"retry_base_s": 0.01, "retry_cap_s": 0.02}
    a, b, c = (make_gateway(config) for _ in range(3))
    faults.program("overloaded", count=1000, model=SICK)
    for _ in range(3):
        assert post(a, f"openai/{SICK}").status_code == 503
    wait_for_key(f"{prefix}open:openai:{SICK}")
    before = sent(faults, SICK)
    for gateway in (a, b, c):
        assert post(gateway, f"openai/{SIBLING}").status_code == 200
        chained = post(gateway, "chain")
        assert chained.status_code == 200
        assert chained.headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"
        assert chained.headers["x-tollhouse-trust"] == "degraded"
        tried = attempts(gateway, chained.headers["x-tollhouse-request-id"])
        assert tried[0]["skipped"].startswith("circuit open (overloaded")
    assert sent(faults, SICK) == before  # b and c never sent the sick model anything
    refused = post(c, f"openai/{SICK}")
    assert refused.status_code == 503 and refused.headers["x-should-retry"] == "false"
    assert f"openai/{SICK}: skipped (circuit open" in refused.json()["error"]["message"]


def test_a_dead_provider_ejected_by_one_instance_is_skipped_by_the_others(
    make_gateway: GatewayFactory, simulator: Simulator, prefix: str
) -> None:
    config = state_config(simulator.url, prefix)
    config["providers"][0]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    config["models"] = {"chain": {"chain": [f"openai/{SIBLING}", "xai/grok-3-mini"]}}
    a, b = make_gateway(config), make_gateway(config)
    first = post(a, "chain")
    assert first.headers["x-tollhouse-served-by"] == "xai/grok-3-mini"
    wait_for_key(f"{prefix}open:openai")
    other = post(b, "chain")
    assert other.headers["x-tollhouse-served-by"] == "xai/grok-3-mini"
    tried = attempts(b, other.headers["x-tollhouse-request-id"])
    assert tried[0]["provider"] == "openai"
    assert tried[0]["skipped"].startswith("provider ejected (no connection")
    assert tried[0]["error_class"] != "connection"  # b never tried to connect


@pytest.mark.parametrize("model", [SICK, None])
def test_marks_carry_their_reason(
    make_gateway: GatewayFactory, faults: Simulator, prefix: str, model: str | None
) -> None:
    config = state_config(faults.url, prefix)
    config["capacity"] = {"breaker_failures": 1, "max_attempts": 1}
    if model is None:
        config["providers"][0]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    a = make_gateway(config)
    faults.program("server_error", count=10, model=SICK)
    post(a, f"openai/{SICK}")
    key = f"{prefix}open:openai" + (f":{model}" if model else "")
    wait_for_key(key)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        reason = client.get(key)
    finally:
        client.close()
    assert reason == (b"server" if model else b"no connection (ClientConnectorError)")


def test_a_reset_through_one_instance_readmits_the_model_on_every_instance(
    make_gateway: GatewayFactory,
    faults: Simulator,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    config = state_config(faults.url, prefix)
    config["capacity"] = {"breaker_failures": 1, "max_attempts": 1}
    a, b = make_gateway(config), make_gateway(config)
    faults.program("overloaded", count=1000, model=SICK)
    assert post(a, f"openai/{SICK}").status_code == 503
    key = f"{prefix}open:openai:{SICK}"
    wait_for_key(key)
    skipped = post(b, f"openai/{SICK}")  # b learns it from Redis, and mirrors it
    assert skipped.status_code == 503 and "skipped (circuit open" in skipped.text
    client = redis.Redis.from_url(REDIS_URL)
    block = f"{prefix}block:openai:{SICK}"  # where the kill switch (issue 25) will live
    client.set(block, "operator")
    try:
        token = (tmp_path / "home" / "operator.token").read_text().strip()
        reset = httpx.post(
            f"{a.url}/tollhouse/v1/models/reset",
            json={"provider": "openai", "model": SICK},
            headers={"X-Tollhouse-Operator": token},
            timeout=30,
        )
        assert reset.json()["cleared"] is True
        assert not client.exists(key) and client.get(block) == b"operator"  # never unblocked
    finally:
        client.close()
    request = urllib.request.Request(faults.url + "/_sim/faults", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()
    deadline = time.monotonic() + 10
    while (answer := post(b, f"openai/{SICK}")).status_code != 200:  # b's mirror is brief
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)
