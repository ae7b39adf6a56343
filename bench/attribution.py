"""Micro-benchmark: how long does a request's process lookup take?

Starts ``--clients`` child processes, each holding one loopback connection to a
listener here from its own directory (a ``.tollhouse`` file, a git repository
or a plain directory), then times :class:`ProcessAttributor` lookups, as the
gateway runs them (a worker thread; the event loop only waits):

- ``first``: the first request on each connection (the socket's holder searched
  for, newest process first);
- ``again``: the next request on the same connections (the last holders checked
  first; the process's name and environment cached by pid and start time);
- ``burst``: a lookup for every connection at once, each timed from its start
  to its answer (the probe's 35 clients at once).

Prints the median, 90th percentile and maximum in milliseconds, and how many
processes and fds the machine has (the search's cost grows with them).

    python bench/attribution.py
    python bench/attribution.py --clients 35 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tollhouse.attribution.process import FAILED, ProcessAttributor

HOLD = """
import socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
sys.stdin.read()
"""


def make_dirs(root: Path, n: int) -> list[Path]:
    dirs = []
    for i in range(n):
        d = root / f"client-{i}" / "src"
        d.mkdir(parents=True)
        if i % 3 == 0:
            (root / f"client-{i}" / ".tollhouse").write_text(f'project = "p{i}"\n')
        elif i % 3 == 1:
            (root / f"client-{i}" / ".git").mkdir()
        dirs.append(d)
    return dirs


async def timed(attributor: ProcessAttributor, ends: tuple[object, object]) -> float:
    began = time.perf_counter()
    found = await attributor.resolve(attributor.start_for(*ends), timeout=60)  # type: ignore[arg-type]
    took = (time.perf_counter() - began) * 1000
    if found is None or found.how == FAILED:
        raise SystemExit(f"lookup failed: {found}")
    return took


async def measure(conns: list[socket.socket], rounds: int) -> dict[str, list[float]]:
    ends = [(c.getpeername(), c.getsockname()) for c in conns]
    out: dict[str, list[float]] = {"first": [], "again": [], "burst": []}
    for _ in range(rounds):
        attributor = ProcessAttributor()  # fresh: nothing known about any connection
        out["first"] += [await timed(attributor, e) for e in ends]
        out["again"] += [await timed(attributor, e) for e in ends]
        fresh = ProcessAttributor()
        out["burst"] += await asyncio.gather(*(timed(fresh, e) for e in ends))
        attributor.close()
        fresh.close()
    return out


def fd_count() -> tuple[int, int]:
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    fds = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fds += len(os.listdir(f"/proc/{pid}/fd"))
    return len(pids), fds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=35)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, socket.create_server(("127.0.0.1", 0)) as listener:
        listener.listen(args.clients)
        port = str(listener.getsockname()[1])
        children, conns = [], []
        for d in make_dirs(Path(tmp), args.clients):
            child = subprocess.Popen(
                [sys.executable, "-c", HOLD, port],
                cwd=d,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None and child.stdout.readline() == "connected\n"
            children.append(child)
            conns.append(listener.accept()[0])
        try:
            results = asyncio.run(measure(conns, args.rounds))
        finally:
            for child in children:
                child.communicate()
            for conn in conns:
                conn.close()
    procs, fds = fd_count()
    print(f"{args.clients} clients, {args.rounds} rounds; machine: {procs} processes, {fds} fds")
    for name, values in results.items():
        values.sort()
        p90 = values[int(len(values) * 0.9) - 1]
        print(
            f"{name:6} median {statistics.median(values):7.3f} ms  "
            f"p90 {p90:7.3f} ms  max {values[-1]:7.3f} ms  (n={len(values)})"
        )


if __name__ == "__main__":
    main()
