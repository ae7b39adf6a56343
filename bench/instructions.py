"""Instructions per request, under callgrind: a deterministic cost, whatever the box does.

Wall-clock benchmarks on this project's 2 shared cores drift by half between
runs; instruction counts don't. This runs the simulator, then each arm under
``valgrind --tool=callgrind`` with instrumentation off, warms it up, counts
the instructions of ``--requests`` sequential chat completions (every thread
of the process: the event loop and the ledger writer), and prints them per
request. Compare a change by running it before and after.

    python bench/instructions.py                    # tollhouse (default config) and bare
    python bench/instructions.py --arm tollhouse --config extra.toml   # extra TOML appended

Needs ``valgrind`` (``apt-get install valgrind``). About 30 s per arm.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tollhouse.testing import free_port

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
BODY = json.dumps({**CHAT, "max_tokens": 16})
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}


def wait_for(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/tollhouse/health")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"nothing answered on {HOST}:{port} within {seconds:.0f} s")


def drive(port: int, path: str, n: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    for _ in range(n):
        conn.request("POST", path, BODY, HEADERS)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"the arm answered {response.status}")


def command(arm: str, port: int, sim: int, config: Path) -> list[str]:
    if arm == "bare":
        return [
            sys.executable,
            str(BENCH_DIR / "bare_passthrough.py"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--upstream",
            f"http://{HOST}:{sim}/openai",
        ]
    serve = ["serve", "--config", str(config), "--host", HOST, "--port", str(port)]
    return [sys.executable, "-m", "tollhouse", *serve]  # valgrind runs the interpreter itself


def measure(arm: str, sim: int, tmp: Path, extra: str, requests: int, warmup: int) -> int:
    port = free_port()
    config = tmp / f"{arm}.toml"
    config.write_text(
        f'[server]\nhost = "{HOST}"\nport = {port}\n\n[[providers]]\nname = "openai"\n'
        f'kind = "openai"\nbase_url = "http://{HOST}:{sim}/openai/v1"\n'
        f'api_key_env = "OPENAI_API_KEY"\n{extra}\n'
    )
    home = tmp / f"home-{arm}"
    home.mkdir()
    out = tmp / f"callgrind-{arm}.%p"
    env = {**os.environ, "TOLLHOUSE_HOME": str(home), "OPENAI_API_KEY": "sk-bench"}
    proc = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            *command(arm, port, sim, config),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        path = "/v1/chat/completions"
        drive(port, path, warmup)
        control = ["callgrind_control"]
        subprocess.run([*control, "-i", "on", str(proc.pid)], check=True, capture_output=True)
        drive(port, path, requests)
        subprocess.run([*control, "-i", "off", str(proc.pid)], check=True, capture_output=True)
        subprocess.run([*control, "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.send_signal(2)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    total = 0  # the dump taken with instrumentation on; the one at exit counts nothing more
    for dump in tmp.glob(f"callgrind-{arm}.*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total // requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=("tollhouse", "bare", "both"), default="both")
    parser.add_argument("--config", type=Path, help="TOML appended to tollhouse's config")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    extra = args.config.read_text() if args.config else ""
    arms = ("tollhouse", "bare") if args.arm == "both" else (args.arm,)
    with tempfile.TemporaryDirectory(prefix="tollhouse-instr-") as name:
        tmp = Path(name)
        sim = free_port()
        tollhouse = str(Path(sys.executable).with_name("tollhouse"))
        simulator = subprocess.Popen(
            [tollhouse, "simulate", "--host", HOST, "--port", str(sim)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(2)
            n, warmup = args.requests, args.warmup
            results = {arm: measure(arm, sim, tmp, extra, n, warmup) for arm in arms}
        finally:
            simulator.terminate()
            simulator.wait(10)
    for arm, per_request in results.items():
        print(f"{arm:10s} {per_request:>10,} instructions/request ({args.requests} requests)")
    if len(results) == 2 and results["tollhouse"]:
        print(f"bare / tollhouse = {results['bare'] / results['tollhouse']:.2f}")


if __name__ == "__main__":
    main()
