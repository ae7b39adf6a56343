"""Slowloris benchmark: does normal traffic keep its latency while 3,000 slow peers hang on?

    .venv/bin/python bench/slowloris.py             # ~1 minute
    .venv/bin/python bench/slowloris.py --slow 3000 --seconds 20 --clients 4
    .venv/bin/python bench/slowloris.py --header-timeout 5   # cut and reopened all along

Starts ``tollhouse simulate`` and ``tollhouse serve`` (its defaults: 60 s header
timeout, 4,096 connections) on loopback, then measures normal chat requests
(``--clients`` keep-alive connections, one request at a time each):

1. unloaded, for ``--seconds``;
2. loaded: a child process holds ``--slow`` connections that each send half a
   header and then one more header line every ``--trickle`` seconds, forever;
   a connection the gateway cuts is opened again at once, as an attacker would;
3. unloaded again (the two unloaded runs are pooled), so drift hits both sides.

Reports p50 / p99 per phase, loaded p99 / unloaded p99 against the 2x target
(PASS or MISS, the script never fails on it), how many slow connections were
open during the loaded run and how many the gateway cut, and the gateway's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from tollhouse.tasks import spawn
from tollhouse.testing import free_port

HOST = "127.0.0.1"
CHAT = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
).encode()
TARGET = 2.0


# ----------------------------------------------------------------------------- slow peers


async def _slow_peer(port: int, trickle: float, stats: dict[str, int]) -> None:
    """One slow connection, reopened whenever the gateway cuts it."""
    while True:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            stats["refused"] += 1
            await asyncio.sleep(trickle)
            continue
        stats["open"] += 1
        try:
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while not reader.at_eof():
                await asyncio.sleep(trickle)
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
        except OSError:
            pass
        finally:
            stats["open"] -= 1
            stats["cut"] += 1
            writer.close()


async def _hold(port: int, count: int, trickle: float) -> None:
    stats = {"open": 0, "cut": 0, "refused": 0}
    for _ in range(count):  # opened in a steady stream, not a thundering herd
        spawn(_slow_peer(port, trickle, stats), name="slow-peer")
        await asyncio.sleep(0.001)
    while True:
        print(json.dumps(stats), flush=True)
        await asyncio.sleep(0.5)


def hold_main(port: int, count: int, trickle: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    asyncio.run(_hold(port, count, trickle))


# ----------------------------------------------------------------------------- normal traffic


async def _client(session: ClientSession, url: str, until: float, out: list[float]) -> None:
    while time.monotonic() < until:
        start = time.perf_counter()
        async with session.post(url, data=CHAT, headers={"Content-Type": "application/json"}) as r:
            await r.read()
            if r.status != 200:
                raise SystemExit(f"normal request answered {r.status}")
        out.append((time.perf_counter() - start) * 1000)


async def measure(port: int, clients: int, seconds: float) -> list[float]:
    url = f"http://{HOST}:{port}/v1/chat/completions"
    out: list[float] = []
    connector = TCPConnector(limit=clients)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=120)) as session:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(session, url, until, out) for _ in range(clients)))
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


# ----------------------------------------------------------------------------- harness


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"a server exited early ({proc.args})")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slow", type=int, default=3000, help="slow connections to hold")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=4, help="normal keep-alive clients")
    parser.add_argument("--trickle", type=float, default=10.0, help="seconds between lines")
    parser.add_argument(
        "--header-timeout", type=float, help="server.client_header_timeout_s (default: 60)"
    )
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)  # child mode: the port
    args = parser.parse_args()
    if args.hold:
        hold_main(args.hold, args.slow, args.trickle)
        return
    exe = str(Path(sys.executable).with_name("tollhouse"))
    sim_port, gw_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as home:
        config = Path(home) / "tollhouse.toml"
        server = f"client_header_timeout_s = {args.header_timeout}\n" if args.header_timeout else ""
        config.write_text(
            f"[server]\n{server}[dashboard]\nenabled = false\n[[providers]]\n"
            'name = "openai"\nkind = "openai"\n'
            f'base_url = "http://{HOST}:{sim_port}/openai/v1"\napi_key_env = "BENCH_KEY"\n'
        )
        env = {**os.environ, "TOLLHOUSE_HOME": home, "BENCH_KEY": "sk-bench"}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        sim = subprocess.Popen([exe, "simulate", "--port", str(sim_port)], **quiet)
        gw = subprocess.Popen(
            [exe, "serve", "--config", str(config), "--port", str(gw_port)], **quiet
        )
        hold: subprocess.Popen[bytes] | None = None
        try:
            _wait_listening(sim_port, sim)
            _wait_listening(gw_port, gw)
            asyncio.run(measure(gw_port, args.clients, 3))  # warm-up
            before = asyncio.run(measure(gw_port, args.clients, args.seconds))
            hold = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--hold",
                    str(gw_port),
                    "--slow",
                    str(args.slow),
                    "--trickle",
                    str(args.trickle),
                ],
                stdout=subprocess.PIPE,
            )
            latest = _follow(hold)
            stats = _wait_for_open(latest, args.slow)
            loaded = asyncio.run(measure(gw_port, args.clients, args.seconds))
            during = dict(latest)
            rss = psutil.Process(gw.pid).memory_info().rss / 2**20
            hold.send_signal(signal.SIGTERM)
            hold.wait(10)
            hold = None
            after = asyncio.run(measure(gw_port, args.clients, args.seconds))
        finally:
            for proc in (hold, gw, sim):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(15)
    _report(before + after, loaded, stats, during, rss, args)


def _follow(hold: subprocess.Popen[bytes]) -> dict[str, int]:
    """The slow-peer process's latest counts, kept current by a reader thread."""
    import threading

    latest: dict[str, int] = {}

    def read() -> None:
        assert hold.stdout is not None
        for line in hold.stdout:
            latest.update(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    return latest


def _wait_for_open(latest: dict[str, int], count: int) -> dict[str, int]:
    for _ in range(1200):
        if latest.get("open", 0) >= count:
            return dict(latest)
        time.sleep(0.1)
    raise SystemExit(f"only {latest.get('open', 0)} of {count} slow connections opened")


def _report(
    unloaded: list[float],
    loaded: list[float],
    start: dict[str, int],
    end: dict[str, int],
    rss: float,
    args: argparse.Namespace,
) -> None:
    rows = [("unloaded", unloaded), (f"{args.slow} slow peers", loaded)]
    print(f"\n{'phase':<20} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in rows:
        print(f"{name:<20} {len(values):>9} {pct(values, 0.5):>8.2f} {pct(values, 0.99):>8.2f}")
    ratio = pct(loaded, 0.99) / pct(unloaded, 0.99)
    verdict = "PASS" if ratio <= TARGET else "MISS"
    print(f"\nloaded p99 / unloaded p99 = {ratio:.2f} (target <= {TARGET:g}x): {verdict}")
    print(f"slow connections open: {start['open']} at the start, {end['open']} at the end")
    print(f"cut by the gateway during the run: {end['cut'] - start['cut']}")
    print(f"gateway RSS while loaded: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
