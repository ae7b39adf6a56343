"""Three gateways, one Redis, one provider quota: what several instances must agree on.

The provider is a simulator that enforces the quota itself, so what counts
is measured on its side (its bill): how many requests it admitted over the
load, and how many it had to answer 429.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx2 as httpx
import pytest
import redis

from tests.cluster.conftest import REDIS_URL, state_config
from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY, GatewayFactory, Harness
from tests.test_capacity_e2e import attempts
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import free_port

MODEL = "gpt-4o-mini"
QUOTA = 1200  # a minute: 20 a second
BURST = 4
LOAD_S = 5.0


@pytest.fixture
def quota_sim(tmp_path: Path) -> Iterator[Simulator]:
    settings = SimulatorSettings(
        bill_path=tmp_path / "quota-bill.jsonl",
        rpm=QUOTA,
        quota_burst_s=1.0,  # OpenAI's per-second quantization: 20 at once at most
        quota_models=frozenset({MODEL}),
    )
    with Simulator(settings) as sim:
        yield sim


def chat(model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def offer(urls: list[str], rate: float, seconds: float) -> list[int]:
    """Send ``rate`` requests a second for ``seconds``, round-robin over ``urls``."""
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(url: str) -> int:
            async with session.post(f"{url}/v1/chat/completions", json=chat()) as r:
                await r.read()
                return r.status

        loop, tasks = asyncio.get_running_loop(), []
        start, n = loop.time(), int(rate * seconds)
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))  # load pacing
            tasks.append(asyncio.ensure_future(one(urls[i % len(urls)])))
        return list(await asyncio.gather(*tasks))


def test_three_instances_hold_one_quota_at_twice_the_load(
    make_gateway: GatewayFactory, quota_sim: Simulator, prefix: str
) -> None:
    config = state_config(quota_sim.url, prefix)
    config["providers"][0].update(rpm=QUOTA, burst=BURST)
    config["capacity"] = {"max_attempts": 1, "deadline_ms": 1000}
    gateways = [make_gateway(config) for _ in range(3)]
    statuses = asyncio.run(offer([g.url for g in gateways], 2 * QUOTA / 60, LOAD_S))
    assert set(statuses) <= {200, 429}, statuses  # excess load is refused, never a 500
    bills = [b for b in quota_sim.bills() if b["model"] == MODEL]
    admitted = sorted(datetime.fromisoformat(b["ts"]) for b in bills if b["status"] == 200)
    upstream_429 = sum(1 for b in bills if b["status"] == 429)
    assert upstream_429 < 0.01 * len(bills), f"{upstream_429} of {len(bills)} upstream 429s"
    assert statuses.count(200) == len(admitted)
    # The rate once the burst is spent: admissions per second between the first and last.
    steady = admitted[BURST:]
    span = (steady[-1] - steady[0]).total_seconds()
    rate = (len(steady) - 1) / span
    assert abs(rate - QUOTA / 60) <= 0.05 * QUOTA / 60, f"{rate:.2f}/s for a quota of 20/s"
    print(f"admitted {rate:.2f}/s, {upstream_429} upstream 429s of {len(bills)}")
    assert len(steady) >= 0.9 * (LOAD_S - 1) * QUOTA / 60  # the load really ran for the window


def _toml(config: dict[str, Any], ledger: Path) -> str:
    """The little TOML a subprocess gateway needs (strings, numbers, one level of tables)."""

    def value(v: Any) -> str:
        return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

    lines = [f'[ledger]\npath = "{ledger}"', "[dashboard]\nenabled = false"]
    for section in ("state", "capacity"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in config.get(section, {}).items()]
    for p in config["providers"]:
        lines.append("[[providers]]")
        lines += [f"{k} = {value(v)}" for k, v in p.items()]
    lines.append(f'[projects.acme]\nkeys = ["{ACME_KEY}"]')
    return "\n".join(lines) + "\n"


@pytest.fixture
def subprocess_gateway(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(config: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str]:
        path = tmp_path / f"sub-{len(started)}.toml"
        path.write_text(_toml(config, tmp_path / f"sub-{len(started)}.db"))
        port = free_port()
        env = {**os.environ, KEY_ENV: PROVIDER_KEY, "TOLLHOUSE_HOME": str(tmp_path)}
        argv = ["serve", "--config", str(path), "--port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollhouse", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # a readiness probe, bounded
            assert proc.poll() is None, "the gateway subprocess exited at start"
            try:
                if httpx.get(f"{url}/tollhouse/health", timeout=2).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway subprocess never became healthy"
            time.sleep(0.05)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_a_killed_instance_gives_its_slots_back_within_the_lease_ttl(
    make_gateway: GatewayFactory, simulator: Simulator, subprocess_gateway: Any, prefix: str
) -> None:
    ttl = 2.0
    config = state_config(simulator.url, prefix, lease_ttl_s=ttl)
    config["providers"][0]["max_in_flight"] = 2
    config["capacity"] = {"max_attempts": 1}
    doomed, doomed_url = subprocess_gateway(config)
    survivor = make_gateway(config)
    held = [_open_stream(doomed_url) for _ in range(2)]  # both slots, held mid-stream
    busy = _post(survivor, {"X-Tollhouse-Deadline-Ms": "300"})
    assert busy.status_code == 429  # the other instance holds every slot
    client = redis.Redis.from_url(REDIS_URL)
    assert client.zcard(f"{prefix}q:openai:slots") == 2  # the two leases, in Redis
    client.close()
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    for stream in held:
        stream.close()
    # Within the lease TTL (plus the poll's last half second) the slots are free again.
    back = _post(survivor, {"X-Tollhouse-Deadline-Ms": str(int(ttl * 1000 + 1500))})
    assert back.status_code == 200, back.text
    row = survivor.row(back.headers["x-tollhouse-request-id"])
    assert row["status"] == 200


def _post(gateway: Harness, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=chat(),
        headers={"Authorization": f"Bearer {ACME_KEY}", **headers},
        timeout=30,
    )


def _open_stream(url: str) -> socket.socket:
    """A streaming request the simulator holds open after one frame; the socket, once that
    frame has arrived (so the gateway holds its slot)."""
    body = (
        b'{"model": "gpt-4o-mini", "stream": true, '
        b'"messages": [{"role": "user", "content": "hold"}]}'
    )
    host = url.removeprefix("http://")
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {ACME_KEY}\r\nContent-Type: application/json\r\n"
        f"x-sim-fault: hold=1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    name, port = host.split(":")
    sock = socket.create_connection((name, int(port)), timeout=30)
    sock.sendall(head + body)
    got = b""
    while b"data:" not in got:
        chunk = sock.recv(65536)
        assert chunk, f"the stream ended early: {got[:300]!r}"
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    return sock


def test_a_gone_model_is_skipped_by_every_instance(
    make_gateway: GatewayFactory, simulator: Simulator, prefix: str
) -> None:
    config = state_config(simulator.url, prefix)
    config["models"] = {"smart": {"chain": [f"openai/{MODEL}", "xai/grok-3-mini"]}}
    config["capacity"] = {"max_attempts": 1}
    a, b = make_gateway(config), make_gateway(config)
    hdr = {"Authorization": f"Bearer {ACME_KEY}"}
    simulator.program("not_found", count=1, model=MODEL)
    gone = httpx.post(f"{a.url}/v1/chat/completions", json=chat("smart"), headers=hdr, timeout=30)
    assert gone.headers["x-tollhouse-served-by"] == "xai/grok-3-mini"
    mark = f"{prefix}gone:openai:{MODEL}"
    client = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + 10
    while not client.exists(mark):  # the mark is written beside the fallback attempt
        assert time.monotonic() < deadline, "the gone mark never reached Redis"
        time.sleep(0.01)
    client.close()
    other = httpx.post(f"{b.url}/v1/chat/completions", json=chat("smart"), headers=hdr, timeout=30)
    assert other.headers["x-tollhouse-served-by"] == "xai/grok-3-mini"  # b didn't ask openai
    tried = attempts(b, other.headers["x-tollhouse-request-id"])
    assert tried[0]["provider"] == "openai" and "gone" in tried[0]["skipped"]
    bills = [x for x in simulator.bills() if x["model"] == MODEL and x["status"] == 404]
    assert len(bills) == 1  # only a's request ever met the 404


def test_the_redis_url_is_validated() -> None:
    from tollhouse.errors import ConfigError
    from tollhouse.settings import parse_settings

    with pytest.raises(ConfigError, match="redis://"):
        parse_settings({"state": {"url": "http://127.0.0.1:6379"}})
    assert parse_settings({"state": {"url": REDIS_URL}}).state.url == REDIS_URL


def test_a_long_stream_keeps_its_slot_past_the_lease_ttl(
    make_gateway: GatewayFactory, simulator: Simulator, prefix: str
) -> None:
    config = state_config(simulator.url, prefix, lease_ttl_s=0.3)
    config["providers"][0]["max_in_flight"] = 1
    gateway = make_gateway(config)
    client, key = redis.Redis.from_url(REDIS_URL), f"{prefix}q:openai:slots"
    stream = _open_stream(gateway.url)
    try:
        ((lease, first_expiry),) = client.zrange(key, 0, -1, withscores=True)
        deadline = time.monotonic() + 20
        while _server_us(client) < first_expiry + 300_000:  # a whole TTL past the first expiry
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ((still, expiry),) = client.zrange(key, 0, -1, withscores=True)
        assert still == lease and expiry > _server_us(client)  # renewed, not expired
    finally:
        stream.close()
        client.close()


def _server_us(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds * 1_000_000 + micros
