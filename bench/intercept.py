"""Time to first byte of a streamed chat completion: direct to the provider vs through
`tollhouse intercept`.

Both arms talk HTTPS to the same stand-in for api.openai.com (the simulator over
TLS with a throwaway CA, in its own process) over one keep-alive connection;
the intercepted arm goes through `tollhouse intercept` (CONNECT, decrypted,
metered, ledger written). Time to first byte = request sent -> first body
bytes (the first SSE event) received. All on loopback; it stops by itself.

    .venv/bin/python bench/intercept.py               # 3 interleaved rounds of 200 per arm
    .venv/bin/python bench/intercept.py --quick       # 1 round of 100

Prints a table and writes it with the raw samples to bench/results/intercept-<time>/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HOST = "api.openai.com"
BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 16,
        "stream": True,
    }
).encode()
HEADERS = {"Host": HOST, "Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
TOLLHOUSE = [sys.executable, "-m", "tollhouse"]


def serve_stand_in(certs: Path) -> None:
    """The child process: the simulator as an HTTPS api.openai.com; prints its port."""
    from tollhouse.intercept.standin import TestCA
    from tollhouse.simulator import Simulator

    ca = TestCA.create(certs, "bench-provider-ca")
    ctx, _ = ca.server_context(certs, [HOST])
    with Simulator(ssl_context=ctx) as sim:
        print(sim.url.rsplit(":", 1)[1], flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})


def ttfb_ms(conn: http.client.HTTPSConnection) -> float:
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=BODY, headers=HEADERS)
    resp = conn.getresponse()
    first = resp.read1(65536)
    took = (time.perf_counter() - start) * 1000
    assert resp.status == 200 and first, (resp.status, first)
    resp.read()  # the rest of the stream, so the connection can be reused
    return took


def direct(port: int, ca: Path) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False  # connecting by IP; the certificate names api.openai.com
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)


def proxied(proxy_port: int, tollhouse_ca: Path) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(tollhouse_ca))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy_port, context=ctx, timeout=30)
    conn.set_tunnel(HOST, 443)
    return conn


def summary(samples: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(samples, n=100)
    return {"n": len(samples), "p50": statistics.median(samples), "p90": qs[89], "p99": qs[98]}


def start(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="per arm per round")
    parser.add_argument("--quick", action="store_true", help="1 round of 100 per arm")
    parser.add_argument("--stand-in", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stand_in:
        serve_stand_in(args.stand_in)
        return
    if args.quick:
        args.rounds, args.requests = 1, 100
    work = Path(tempfile.mkdtemp(prefix="tollhouse-bench-intercept-"))
    env = {**os.environ, "TOLLHOUSE_HOME": str(work / "home")}
    sim, sim_port = start([sys.executable, __file__, "--stand-in", str(work)], env)
    config = work / "tollhouse.toml"
    config.write_text(
        f'[ledger]\npath = "{work / "ledger.db"}"\n[intercept]\n'
        f'upstream_ca_file = "{work / "bench-provider-ca.pem"}"\n'
        f'upstream_overrides = {{"{HOST}" = "127.0.0.1:{sim_port}"}}\n'
    )
    proxy, line = start([*TOLLHOUSE, "intercept", "--config", str(config), "--port", "0"], env)
    proxy_port = int(line.split("listening on ", 1)[1].split(";")[0].rsplit(":", 1)[1])
    try:
        arms = {
            "direct": direct(int(sim_port), work / "bench-provider-ca.pem"),
            "intercept": proxied(proxy_port, work / "home" / "ca" / "tollhouse-ca.pem"),
        }
        samples: dict[str, list[float]] = {name: [] for name in arms}
        for conn in arms.values():
            for _ in range(20):  # warm-up: connections, TLS sessions, caches
                ttfb_ms(conn)
        for _ in range(args.rounds):
            for name, conn in arms.items():
                samples[name] += [ttfb_ms(conn) for _ in range(args.requests)]
        for conn in arms.values():
            conn.close()
    finally:
        for proc in (proxy, sim):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    report(samples, work)


def report(samples: dict[str, list[float]], work: Path) -> None:
    stats = {name: summary(values) for name, values in samples.items()}
    base = stats["direct"]["p50"]
    lines = [
        "| arm | requests | TTFB p50 | p90 | p99 | added p50 |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in stats.items():
        added = "—" if name == "direct" else f"+{s['p50'] - base:.3f} ms"
        lines.append(
            f"| {name} | {s['n']:.0f} | {s['p50']:.3f} ms | {s['p90']:.3f} ms "
            f"| {s['p99']:.3f} ms | {added} |"
        )
    table = "\n".join(lines)
    out = BENCH_DIR / "results" / time.strftime("intercept-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table + "\n")
    (out / "samples.json").write_text(json.dumps(samples))
    print(table)
    print(f"\nwritten to {out} (scratch files in {work})")


if __name__ == "__main__":
    main()
