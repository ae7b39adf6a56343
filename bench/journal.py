"""What does the crash guarantee (the write-ahead journal) cost a request?

Two measurements, journal off vs on:

1. micro: the ledger work the event loop does per request, best of several
   rounds (``submit`` alone vs ``seal`` + ``submit_sealed``: the row is built
   once either way; the journal adds one JSON line and one ``write(2)``);
2. end to end: ``tollhouse serve`` (journal on, then off, interleaved rounds)
   in front of ``tollhouse simulate``, one keep-alive connection, sequential
   chat completions, then streams; p50/p99 latency per arm.

    .venv/bin/python bench/journal.py             # ~20 s
    .venv/bin/python bench/journal.py --rounds 1 --requests 200   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from observe_cost import best, entry  # bench/, next to this file

from tollhouse.ledger.entry import LedgerEntry
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing import Pricer
from tollhouse.testing import free_port


def micro(tmp: Path, repeat: int, rounds: int) -> tuple[float, float]:
    entries = [entry(i) for i in range(64)]
    ids = itertools.count()

    def fresh(i: int) -> LedgerEntry:  # a unique request id per row (the ledger checks)
        e = entries[i % 64]
        e.request_id = f"r{next(ids)}"
        return e

    plain = LedgerWriter(tmp / "plain.db", Pricer({})).start()
    journaled = LedgerWriter(tmp / "j.db", Pricer({}), journal=tmp / "j.journal").start()
    try:

        def with_journal(i: int) -> None:
            sealed = journaled.seal(fresh(i))
            assert sealed is not None
            journaled.submit_sealed(sealed)

        off = best(lambda i: plain.submit(fresh(i)), repeat, rounds)
        on = best(with_journal, repeat, rounds)
    finally:
        plain.close()
        journaled.close()
    return off, on


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{cmd[:4]} did not start")


async def drive(url: str, n: int, stream: bool) -> list[float]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    latencies = []
    headers = {"Authorization": "Bearer sk-bench"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for i in range(n + 20):
            t = time.perf_counter()
            async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            if i >= 20:  # warm-up excluded
                latencies.append((time.perf_counter() - t) * 1000)
    return latencies


def end_to_end(tmp: Path, rounds: int, requests: int) -> dict[str, dict[str, list[float]]]:
    exe = [sys.executable, "-m", "tollhouse"]
    sim_port = free_port()
    sim = start([*exe, "simulate", "--port", str(sim_port)], sim_port)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for n in range(rounds):
            for journal in (True, False):
                config = tmp / f"th-{n}-{journal}.toml"
                config.write_text(
                    f'[ledger]\npath = "{tmp / f"l-{n}-{journal}.db"}"\n'
                    f"journal = {str(journal).lower()}\n"
                    f'[[providers]]\nname = "openai"\nkind = "openai"\n'
                    f'base_url = "http://127.0.0.1:{sim_port}/openai/v1"\n'
                )
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                gw = start([*exe, "serve", "--config", str(config), "--port", str(port)], port)
                try:
                    arm = results.setdefault("journal on" if journal else "journal off", {})
                    for stream in (False, True):
                        kind = "stream" if stream else "body"
                        found = asyncio.run(drive(url, requests, stream))
                        arm.setdefault(kind, []).extend(found)
                finally:
                    gw.terminate()
                    gw.wait(60)
    finally:
        sim.terminate()
        sim.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        off, on = micro(tmp, args.repeat, 5)
        print(f"loop work per request, journal off:  {off:6.2f} µs")
        print(f"loop work per request, journal on:   {on:6.2f} µs  (+{on - off:.2f} µs)")
        results = end_to_end(tmp, args.rounds, args.requests)
    for arm, kinds in results.items():
        for kind, values in kinds.items():
            values.sort()
            p50 = statistics.median(values)
            p99 = values[int(len(values) * 0.99) - 1]
            print(f"{arm:12} {kind:6}  p50 {p50:.3f} ms  p99 {p99:.3f} ms  (n={len(values)})")


if __name__ == "__main__":
    main()
