"""What Redis-backed limits cost against in-process ones (issue 7).

Two measurements, each in-process, one after the other:

- ``gate``: the Capacity gate alone, ``acquire`` then ``settle`` + ``release``,
  sequentially, N times: with in-process limits (the default) and with the
  Redis limiter (one ADMIT script per acquire; a release and a token settle
  as two more round trips, spawned, awaited before the next acquire). Limits
  are set so nothing ever waits (rpm and tpm huge, max_in_flight 1000, so
  the lease set is exercised too). Wall time per operation (p50, p99, mean)
  and this process's CPU time per operation.
- ``gateway``: sequential non-streaming chat completions through a gateway on
  loopback in front of the provider simulator, with and without ``[state]``:
  per-request latency as the client sees it.

    .venv/bin/python bench/redis_limits.py                 # ~20 s
    .venv/bin/python bench/redis_limits.py --ops 2000 --requests 200

Needs the Redis at 127.0.0.1:6379 (``scripts/check-redis``); every key it
writes has a fresh prefix and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import redis
import uvloop

from tollhouse.app import create_app
from tollhouse.capacity import Capacity, Limits
from tollhouse.cluster import RedisLimiter, RedisState
from tollhouse.settings import StateSettings, parse_settings
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import BackgroundServer

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMITS = Limits(rpm=10**9, tpm=10**12, max_in_flight=1000)


def summary(samples: list[float], cpu: float) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(ordered[len(ordered) // 2] * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99)] * 1e6, 1),
        "mean_us": round(statistics.fmean(samples) * 1e6, 1),
        "cpu_us_per_op": round(cpu / len(samples) * 1e6, 1),
    }


async def gate_run(capacity: Capacity, ops: int, drain: Callable[[], Any]) -> dict[str, float]:
    loop = asyncio.get_running_loop()

    async def once() -> None:
        lease = await capacity.acquire("openai", "gpt-4o", "bench", 100, loop.time() + 10)
        lease.settle(60)
        lease.release(None)
        await drain()

    for _ in range(ops // 10):  # warm up: connections, script cache
        await once()
    samples, cpu = [], time.process_time()
    for _ in range(ops):
        t0 = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - t0)
    return summary(samples, time.process_time() - cpu)


async def bench_gate(ops: int, prefix: str) -> dict[str, Any]:
    local = Capacity()
    local.configure("openai", LIMITS)

    async def nothing() -> None:
        pass

    results = {"in_process": await gate_run(local, ops, nothing)}
    state = RedisState.from_settings(StateSettings(url=REDIS_URL, key_prefix=prefix))
    limiter = RedisLimiter(state, lease_ttl_s=30)
    shared = Capacity(shared=limiter)
    shared.configure("openai", LIMITS)

    async def spawned() -> None:  # the release and settle tasks the lease spawned
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me and "renewer" not in t.get_name()]
        await asyncio.gather(*pending)

    results["redis"] = await gate_run(shared, ops, spawned)
    await shared.close()
    await state.close()
    return results


def bench_gateway(requests: int, prefix: str, home: Path) -> dict[str, Any]:
    os.environ["TOLLHOUSE_BENCH_KEY"] = "sk-bench"
    results: dict[str, Any] = {}
    with Simulator(SimulatorSettings()) as sim:
        for arm, state in (("in_process", {}), ("redis", {"url": REDIS_URL, "key_prefix": prefix})):
            config = {
                "providers": [
                    {
                        "name": "openai",
                        "kind": "openai",
                        "base_url": sim.url + "/openai/v1",
                        "api_key_env": "TOLLHOUSE_BENCH_KEY",
                        "rpm": 10**9,
                        "max_in_flight": 1000,
                    }
                ],
                "projects": {"bench": {"keys": ["th-bench"]}},
                "state": state,
            }
            settings = parse_settings(config)
            ledger = home / f"{arm}.db"
            app = _factory(settings, ledger)
            with BackgroundServer(app) as gw:
                results[arm] = _drive(gw.url, requests)
    return results


def _factory(settings: Any, ledger: Path) -> Callable[[], Any]:
    return lambda: create_app(settings, ledger_path=ledger)


def _drive(url: str, requests: int) -> dict[str, float]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    samples = []
    with httpx.Client(headers={"Authorization": "Bearer th-bench"}, timeout=30) as client:
        for i in range(requests + requests // 10):
            t0 = time.perf_counter()
            r = client.post(f"{url}/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            if i >= requests // 10:
                samples.append(time.perf_counter() - t0)
    return summary(samples, 0.0) | {"cpu_us_per_op": float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=3000, help="acquire+release per gate arm")
    parser.add_argument("--requests", type=int, default=300, help="chat requests per gateway arm")
    args = parser.parse_args()
    prefix = f"th-bench:{secrets.token_hex(6)}:"
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    try:
        out: dict[str, Any] = {"gate": uvloop.run(bench_gate(args.ops, prefix))}
        with tempfile.TemporaryDirectory() as home:
            out["gateway"] = bench_gateway(args.requests, prefix, Path(home))
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    print(json.dumps(out, indent=2))
    for name, arms in out.items():
        print(f"\n{name}:  p50 / p99 / mean µs, CPU µs per op")
        for arm, r in arms.items():
            cpu = "-" if r["cpu_us_per_op"] != r["cpu_us_per_op"] else r["cpu_us_per_op"]
            print(f"  {arm:11} {r['p50_us']:8} {r['p99_us']:8} {r['mean_us']:8}   {cpu}")


if __name__ == "__main__":
    main()
