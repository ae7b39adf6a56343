"""The kill switch on three instances sharing one Redis, under traffic (issue 25).

A block set through one instance holds on the others once they have read the
shared hash (twice a second); a chain's traffic falls through to its next
model without a failed request, and flows back after the unblock.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from click.testing import CliRunner

from tests.cluster.conftest import REDIS_URL, state_config
from tests.conftest import ACME_KEY, GatewayFactory, Harness
from tollhouse.cli.main import cli
from tollhouse.simulator import Simulator

BLOCKED, OTHER = "gpt-4o", "gpt-4o-mini"
HEADERS = {"Authorization": f"Bearer {ACME_KEY}"}


def post(gateway: Harness, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=30)


def until(gateway: Harness, served: str) -> None:
    """Bounded readiness wait: the instance has read the shared blocks."""
    deadline = time.monotonic() + 10
    while post(gateway, "smart").headers["x-tollhouse-served-by"] != served:
        assert time.monotonic() < deadline, f"{gateway.url} never served {served}"
        time.sleep(0.05)


def test_a_block_on_one_instance_holds_on_all_three_under_traffic(
    make_gateway: GatewayFactory,
    simulator: Simulator,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    config = state_config(simulator.url, prefix)
    config["models"] = {"smart": {"chain": [f"openai/{BLOCKED}", f"openai/{OTHER}"]}}
    gateways = [make_gateway(config) for _ in range(3)]
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for gateway in gateways:
                statuses.append(post(gateway, "smart").status_code)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        a, b, c = gateways
        result = CliRunner().invoke(
            cli, ["models", "block", f"openai/{BLOCKED}", "--reason", "recalled", "--url", a.url]
        )
        assert result.exit_code == 0, result.output
        assert redis.Redis.from_url(REDIS_URL).hexists(f"{prefix}blocks", f"openai/{BLOCKED}")
        for gateway in gateways:
            until(gateway, f"openai/{OTHER}")
        refused = post(c, f"openai/{BLOCKED}")
        assert refused.status_code == 403 and "recalled" in refused.json()["error"]["message"]
        result = CliRunner().invoke(cli, ["models", "unblock", f"openai/{BLOCKED}", "--url", b.url])
        assert result.exit_code == 0 and "unblocked" in result.output
        for gateway in gateways:
            until(gateway, f"openai/{BLOCKED}")
    finally:
        stop.set()
        worker.join()
    assert statuses and set(statuses) == {200}  # the chain kept every request answered
