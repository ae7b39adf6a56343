"""Overhead benchmark: what does tollhouse cost on top of the provider, and on top of a bare proxy?

Three arms, one run, all on loopback, keep-alive on both hops:

- ``direct``:    wrk -> provider simulator
- ``bare``:      wrk -> bench/bare_passthrough.py (aiohttp + uvloop, no features) -> simulator
- ``tollhouse``: wrk -> ``tollhouse serve`` (metering on, SQLite ledger) -> simulator

    python bench/overhead.py            # ~3 minutes, 3 interleaved rounds
    python bench/overhead.py --quick    # ~1 minute smoke run

Needs ``wrk`` (``apt-get install wrk``). Raw output and the results table are
written to ``bench/results/<timestamp>/``. See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import uvloop
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from tollhouse.testing import free_port

BENCH_DIR = Path(__file__).resolve().parent
CHAT_LUA = BENCH_DIR / "wrk" / "chat.lua"
BARE_PASSTHROUGH = BENCH_DIR / "bare_passthrough.py"
HOST = "127.0.0.1"
GATEWAY_PATH = "/v1/chat/completions"
SIMULATOR_PATH = "/openai/v1/chat/completions"
# Same request as bench/wrk/chat.lua; the streamed one adds "stream": true but no
# stream_options: the client does not ask for usage, the gateway must still record it.
CHAT_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello"}],
    "max_tokens": 16,
}
CHAT_BODY = json.dumps(CHAT_REQUEST, separators=(",", ":")).encode()
STREAM_BODY = json.dumps(CHAT_REQUEST | {"stream": True}, separators=(",", ":")).encode()
STREAM_WARMUP = 20
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
LOAD_CONNECTIONS = (16, 64)
ARM_NAMES = ("direct", "bare", "tollhouse")
TARGET_RATIO_AT_16 = 0.65
TARGET_ADDED_P50_MS = 0.35
MIN_LATENCY_SAMPLES = 2000


class BenchError(Exception):
    """Something the user has to fix before the benchmark can run (message says what)."""


@dataclass
class Options:
    rounds: int
    latency_seconds: int
    load_seconds: int
    warmup_seconds: int
    stream_requests: int
    threads: int
    tollhouse: str | None
    results: Path


@dataclass
class Arm:
    name: str
    url: str


@dataclass
class WrkRun:
    arm: str
    round: int
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core, per process

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class StreamStats:
    ttfb_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    gaps_ms: list[float] = field(default_factory=list)
    failures: int = 0


@dataclass
class MemorySample:
    label: str
    seconds: float
    served: int
    rss_mb: float


# ----------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """Child-side: get SIGKILL if the harness itself is killed -9 (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Fleet:
    """The servers the bench started; each in its own session, all stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        self.procs[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self, name: str, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise BenchError(
                    f"{name} exited with {self.procs[name].returncode}:\n" + self.log_tail(name)
                )
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise BenchError(
            f"{name} did not accept connections on {port} in {timeout:.0f}s:\n"
            + self.log_tail(name)
        )

    def log_tail(self, name: str, lines: int = 20) -> str:
        text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self, name: str, grace: float = 10.0) -> int | None:
        """SIGINT (graceful: the gateway flushes its ledger), then SIGKILL whatever is left
        of the process group. Returns the exit code, None if it had to be killed."""
        proc = self.procs.pop(name)
        rc: int | None = proc.poll()
        if rc is None:
            proc.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                rc = proc.wait(grace)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return rc

    def cpu_seconds(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            try:
                t = psutil.Process(proc.pid).cpu_times()
                out[name] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return out

    def rss_mb(self, name: str) -> float:
        proc = psutil.Process(self.procs[name].pid)
        family = [proc, *proc.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in family)) / 2**20

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.procs):
            self.stop(name, grace=3.0)
        for log in self._logs:
            log.close()


def find_tollhouse(explicit: str | None) -> str:
    candidates = (
        [explicit]
        if explicit
        else [str(Path(sys.executable).parent / "tollhouse"), shutil.which("tollhouse")]
    )
    for path in candidates:
        if path and Path(path).exists():
            return path
    raise BenchError(
        "tollhouse executable not found: run with the project's venv python "
        "(pip install -e .), or pass --tollhouse PATH"
    )


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install wrk")


def check_commands(tollhouse: str) -> None:
    for command in ("simulate", "serve"):
        done = subprocess.run([tollhouse, command, "--help"], capture_output=True, timeout=30)
        if done.returncode != 0:
            raise BenchError(
                f"`{tollhouse} {command} --help` failed (rc {done.returncode}); "
                f"does this tollhouse have the {command!r} command?\n"
                + done.stderr.decode(errors="replace")[-800:]
            )


def write_config(directory: Path, sim_port: int, port: int) -> Path:
    path = directory / "tollhouse.toml"
    path.write_text(
        f'[server]\nhost = "{HOST}"\nport = {port}\n\n'
        f'[[providers]]\nname = "openai"\nkind = "openai"\n'
        f'base_url = "http://{HOST}:{sim_port}/openai/v1"\napi_key_env = "OPENAI_API_KEY"\n'
    )
    return path


def start_arms(fleet: Fleet, tollhouse: str, tmp: Path) -> list[Arm]:
    sim, bare, gateway = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    fleet.start("simulator", [tollhouse, "simulate", "--host", HOST, "--port", str(sim)], env)
    fleet.wait_ready("simulator", sim)
    fleet.start(
        "bare",
        [
            sys.executable,
            str(BARE_PASSTHROUGH),
            "--host",
            HOST,
            "--port",
            str(bare),
            "--upstream",
            f"http://{HOST}:{sim}/openai",
        ],
        env,
    )
    config = write_config(tmp, sim, gateway)
    home = tmp / "home"
    home.mkdir()
    gateway_env = {**env, "TOLLHOUSE_HOME": str(home), "OPENAI_API_KEY": "sk-bench"}
    fleet.start(
        "tollhouse",
        [tollhouse, "serve", "--config", str(config), "--host", HOST, "--port", str(gateway)],
        gateway_env,
    )
    fleet.wait_ready("bare", bare)
    fleet.wait_ready("tollhouse", gateway)
    return [
        Arm("direct", f"http://{HOST}:{sim}{SIMULATOR_PATH}"),
        Arm("bare", f"http://{HOST}:{bare}{GATEWAY_PATH}"),
        Arm("tollhouse", f"http://{HOST}:{gateway}{GATEWAY_PATH}"),
    ]


def sanity_check(arm: Arm) -> None:
    """One request by hand: a fast 4xx would otherwise look like great throughput."""
    request = urllib.request.Request(arm.url, data=CHAT_BODY, headers=HEADERS, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except Exception as exc:  # HTTPError, URLError, JSON: all mean the arm is unusable
        detail = exc.read().decode(errors="replace")[:500] if hasattr(exc, "read") else ""
        raise BenchError(f"{arm.name}: sanity request to {arm.url} failed: {exc} {detail}") from exc
    if not body.get("choices"):
        raise BenchError(f"{arm.name}: answer has no choices: {str(body)[:300]}")


# ----------------------------------------------------------------------------- wrk


def parse_bench_line(text: str) -> dict[str, float]:
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise BenchError("wrk printed no BENCH line (Lua done() did not run):\n" + text[-1500:])
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}


def wrk_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(arm: Arm, connections: int, seconds: int, threads: int, raw: Path) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(CHAT_LUA),
        arm.url,
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk hung on {arm.name} ({' '.join(argv)})") from exc
    raw.write_text(" ".join(argv) + "\n\n" + done.stdout + done.stderr)
    if done.returncode != 0:
        raise BenchError(f"wrk failed on {arm.name} (rc {done.returncode}):\n{done.stderr}")
    return parse_bench_line(done.stdout)


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy, summed over cores."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def measure(
    fleet: Fleet, arm: Arm, round_no: int, connections: int, opts: Options, raw_dir: Path
) -> WrkRun:
    seconds = opts.latency_seconds if connections == 1 else opts.load_seconds
    raw = raw_dir / f"r{round_no}-{arm.name}-c{connections}.txt"
    before, wrk_before, busy_before = fleet.cpu_seconds(), wrk_cpu_seconds(), busy_cpu_seconds()
    t0 = time.monotonic()
    stats = run_wrk(arm, connections, seconds, opts.threads, raw)
    wall = time.monotonic() - t0
    after = fleet.cpu_seconds()
    cpu = {name: 100 * (after[name] - before[name]) / wall for name in after if name in before}
    cpu["wrk"] = 100 * (wrk_cpu_seconds() - wrk_before) / wall
    # Whatever else ran on the box meanwhile (other jobs steal cores from the arms).
    cpu["other"] = max(0.0, 100 * (busy_cpu_seconds() - busy_before) / wall - sum(cpu.values()))
    errors = sum(int(stats[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return WrkRun(
        arm.name,
        round_no,
        connections,
        int(stats["requests"]),
        stats["duration_us"] / 1e6,
        stats["p50_us"] / 1e3,
        stats["p90_us"] / 1e3,
        stats["p99_us"] / 1e3,
        stats["max_us"] / 1e3,
        errors,
        cpu,
    )


def warm_up(arms: Sequence[Arm], opts: Options, raw_dir: Path) -> dict[str, int]:
    """One short 16-connection run per arm; returns the requests each arm answered."""
    return {
        arm.name: int(
            run_wrk(arm, 16, opts.warmup_seconds, opts.threads, raw_dir / f"warmup-{arm.name}.txt")[
                "requests"
            ]
        )
        for arm in arms
    }


def rotated(arms: Sequence[Arm], by: int) -> list[Arm]:
    by %= len(arms)
    return [*arms[by:], *arms[:by]]


def run_rounds(
    fleet: Fleet,
    arms: Sequence[Arm],
    opts: Options,
    raw_dir: Path,
    memory: list[MemorySample],
    t_start: float,
    warmed: int,
) -> list[WrkRun]:
    runs: list[WrkRun] = []
    for round_no in range(1, opts.rounds + 1):
        order = rotated(arms, round_no - 1)  # no arm always runs first (or right after another)
        for connections in (1, *LOAD_CONNECTIONS):
            for arm in order:
                run = measure(fleet, arm, round_no, connections, opts, raw_dir)
                runs.append(run)
                print(
                    f"  round {round_no} {arm.name:>9} c{connections:<3} {run.rps:>9,.0f} req/s"
                    f"  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms"
                    + (f"  ERRORS {run.errors}" if run.errors else ""),
                    flush=True,
                )
        served = warmed + sum(r.requests for r in runs if r.arm == "tollhouse")
        memory.append(
            MemorySample(
                f"after round {round_no}",
                time.monotonic() - t_start,
                served,
                fleet.rss_mb("tollhouse"),
            )
        )
    return runs


# ----------------------------------------------------------------------------- streaming


async def stream_once(session: ClientSession, url: str, stats: StreamStats) -> None:
    t0 = time.perf_counter()
    arrivals: list[float] = []
    body = b""
    async with session.post(url, data=STREAM_BODY, headers=HEADERS) as response:
        async for chunk in response.content.iter_any():
            arrivals.append(time.perf_counter())
            body += chunk
        ok = response.status == 200 and b"[DONE]" in body
    if not ok or not arrivals:
        stats.failures += 1
        return
    stats.ttfb_ms.append((arrivals[0] - t0) * 1e3)
    stats.total_ms.append((arrivals[-1] - t0) * 1e3)
    stats.gaps_ms.extend((b - a) * 1e3 for a, b in itertools.pairwise(arrivals))


async def stream_phase(arms: Sequence[Arm], opts: Options) -> dict[str, StreamStats]:
    """Sequential streamed requests, 1 connection per arm, interleaved in rounds."""
    stats = {arm.name: StreamStats() for arm in arms}
    per_round = max(1, opts.stream_requests // opts.rounds)
    timeout = ClientTimeout(total=30)
    sessions = {
        arm.name: ClientSession(connector=TCPConnector(limit=1), timeout=timeout) for arm in arms
    }
    try:
        for arm in arms:  # warm-up: connection set up, code paths hot; not recorded
            for _ in range(STREAM_WARMUP):
                await stream_once(sessions[arm.name], arm.url, StreamStats())
        for round_no in range(opts.rounds):
            for arm in rotated(arms, round_no):
                for _ in range(per_round):
                    await stream_once(sessions[arm.name], arm.url, stats[arm.name])
    finally:
        for session in sessions.values():
            await session.close()
    return stats


# ----------------------------------------------------------------------------- ledger


def ledger_report(db: Path, streamed: int, served: int) -> list[str]:
    """Was every request recorded, and usage too for streams whose client did not ask?"""
    if not db.exists():
        return [f"no ledger at {db} (the gateway wrote none)"]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
        if not {"status", "stream", "output_tokens"} <= columns:
            return [
                f"ledger `requests` table lacks status/stream/output_tokens (has: "
                f"{', '.join(sorted(columns)) or 'no such table'}); skipped the check"
            ]
        counts = conn.execute("SELECT status, COUNT(*) FROM requests GROUP BY status ORDER BY 1")
        by_status = ", ".join(f"{status}: {n:,}" for status, n in counts)
        rows, with_usage = conn.execute(
            "SELECT COUNT(*), COUNT(output_tokens) FROM requests WHERE stream"
        ).fetchone()
    ok = rows >= streamed and with_usage == rows
    return [
        f"tollhouse answered about {served:,} requests (wrk's completed responses + streamed "
        f"+ sanity/warm-up); `requests` rows by status: {by_status}",
        f"streamed requests sent: {streamed}; rows with `stream` set: {rows}; with non-null "
        f"output_tokens: {with_usage} -> {'OK' if ok else 'CHECK'}",
    ]


# ----------------------------------------------------------------------------- summary


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(value: float, signed: bool = False) -> str:
    """Milliseconds for the tables; '-' when there was nothing to measure."""
    if value != value:  # NaN
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def pick(runs: Sequence[WrkRun], arm: str, connections: int) -> list[WrkRun]:
    return [r for r in runs if r.arm == arm and r.connections == connections]


def added_p50(runs: Sequence[WrkRun], arm: str) -> float:
    """Median over rounds of (arm p50 - direct p50 in the same round), 1 connection."""
    direct = {r.round: r.p50_ms for r in pick(runs, "direct", 1)}
    return median([r.p50_ms - direct[r.round] for r in pick(runs, arm, 1) if r.round in direct])


def summarise(runs: Sequence[WrkRun]) -> dict[str, dict[str, float]]:
    out = {}
    for arm in ARM_NAMES:
        one, c16 = pick(runs, arm, 1), pick(runs, arm, 16)
        out[arm] = {
            "p50_1c": median([r.p50_ms for r in one]),
            "p99_1c": median([r.p99_ms for r in one]),
            "added_p50": added_p50(runs, arm),
            "rps16": median([r.rps for r in c16]),
            "rps64": median([r.rps for r in pick(runs, arm, 64)]),
            "p99_16": median([r.p99_ms for r in c16]),
        }
    return out


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main_table(summary: dict[str, dict[str, float]]) -> str:
    header = [
        "arm",
        "1-conn p50 ms",
        "1-conn p99 ms",
        "added p50 vs direct ms",
        "req/s @16",
        "req/s @64",
        "p99 @16 ms",
    ]
    rows = [
        [
            arm,
            f"{s['p50_1c']:.3f}",
            f"{s['p99_1c']:.3f}",
            f"{s['added_p50']:+.3f}",
            f"{s['rps16']:,.0f}",
            f"{s['rps64']:,.0f}",
            f"{s['p99_16']:.2f}",
        ]
        for arm, s in summary.items()
    ]
    return md_table(header, rows)


def ratio_lines(summary: dict[str, dict[str, float]]) -> list[str]:
    t, b, d = summary["tollhouse"], summary["bare"], summary["direct"]
    rows = [
        [name, f"{x['rps16'] / y['rps16']:.2f}", f"{x['rps64'] / y['rps64']:.2f}"]
        for name, x, y in (
            ("tollhouse / bare", t, b),
            ("tollhouse / direct", t, d),
            ("bare / direct", b, d),
        )
    ]
    return [
        md_table(["throughput ratio", "@16", "@64"], rows),
        "",
        f"added p50 over direct at 1 connection: tollhouse {t['added_p50']:+.3f} ms, "
        f"bare {b['added_p50']:+.3f} ms (tollhouse over bare: "
        f"{t['added_p50'] - b['added_p50']:+.3f} ms)",
    ]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def target_lines(summary: dict[str, dict[str, float]], runs: Sequence[WrkRun]) -> list[str]:
    t, b = summary["tollhouse"], summary["bare"]
    ratio = t["rps16"] / b["rps16"]
    lines = [
        f"- tollhouse >= {TARGET_RATIO_AT_16:.0%} of bare's req/s at 16 connections: "
        f"{ratio:.1%} -> {verdict(ratio >= TARGET_RATIO_AT_16)}",
        f"- tollhouse adds <= {TARGET_ADDED_P50_MS} ms p50 over direct at 1 connection: "
        f"{t['added_p50']:+.3f} ms -> {verdict(t['added_p50'] <= TARGET_ADDED_P50_MS)}",
    ]
    if simulator_bound(runs, 16):  # then req/s say little about the proxies
        by_cpu = cpu_us_per_request(runs, "bare", "bare") / cpu_us_per_request(
            runs, "tollhouse", "tollhouse"
        )
        ok = by_cpu >= TARGET_RATIO_AT_16
        lines.insert(
            1,
            "  - but the simulator set the pace at 16 connections; by proxy CPU per "
            f"request the ratio is {by_cpu:.1%} -> {verdict(ok)}",
        )
    return lines


def cpu_us_per_request(runs: Sequence[WrkRun], arm: str, process: str) -> float:
    """Median CPU time ``process`` spent per request of ``arm`` at 16 connections, in µs.

    Unlike req/s this barely moves when other jobs share the box, so it is the
    steadier way to compare the two proxies."""
    return median([r.cpu.get(process, 0.0) * 1e4 / r.rps for r in pick(runs, arm, 16) if r.rps])


def cpu_table(runs: Sequence[WrkRun]) -> str:
    procs = ["wrk", "simulator", "bare", "tollhouse", "other"]
    rows = []
    for arm in ARM_NAMES:
        shares = [f"{median([r.cpu.get(p, 0.0) for r in pick(runs, arm, 16)]):.0f}" for p in procs]
        proxy = f"{cpu_us_per_request(runs, arm, arm):.0f}" if arm != "direct" else "-"
        rows.append([arm, *shares, f"{cpu_us_per_request(runs, arm, 'simulator'):.0f}", proxy])
    return md_table(
        ["arm @16 conn", *[f"{p} %cpu" for p in procs], "simulator µs cpu/req", "proxy µs cpu/req"],
        rows,
    )


def cpu_ratio_line(runs: Sequence[WrkRun]) -> str:
    tollhouse = cpu_us_per_request(runs, "tollhouse", "tollhouse")
    bare = cpu_us_per_request(runs, "bare", "bare")
    return (
        f"proxy CPU per request @16: tollhouse {tollhouse:.0f} µs, bare {bare:.0f} µs; "
        f"bare / tollhouse = {bare / tollhouse:.2f} (the tollhouse / bare req/s to expect "
        "when each proxy has a core to itself)"
    )


def stream_table(stats: dict[str, StreamStats]) -> str:
    ttfb0, total0 = median(stats["direct"].ttfb_ms), median(stats["direct"].total_ms)
    rows = []
    for arm, s in stats.items():
        ttfb, total = median(s.ttfb_ms), median(s.total_ms)
        rows.append(
            [
                arm,
                str(len(s.ttfb_ms)),
                ms(ttfb),
                ms(ttfb - ttfb0, True),
                ms(total),
                ms(total - total0, True),
                ms(median(s.gaps_ms)),
                str(s.failures),
            ]
        )
    return md_table(
        [
            "arm",
            "n",
            "TTFB p50 ms",
            "added TTFB",
            "total p50 ms",
            "added total",
            "chunk gap p50 ms",
            "failures",
        ],
        rows,
    )


def memory_lines(memory: Sequence[MemorySample]) -> list[str]:
    lines = [
        f"- {m.label}: {m.rss_mb:.1f} MB ({m.served:,} requests served by then)" for m in memory
    ]
    loaded = [m for m in memory if m.label.startswith("after round")]
    if len(loaded) >= 2 and loaded[-1].seconds > loaded[0].seconds:
        minutes = (loaded[-1].seconds - loaded[0].seconds) / 60
        growth = (loaded[-1].rss_mb - loaded[0].rss_mb) / minutes
        lines.append(f"- growth under load (round 1 -> last round): {growth:+.1f} MB/min")
    return lines


def warnings(runs: Sequence[WrkRun], stats: dict[str, StreamStats]) -> list[str]:
    out = [
        f"- {r.arm} round {r.round} c{r.connections}: {r.errors} wrk errors (see raw/)"
        for r in runs
        if r.errors
    ]
    out += [
        f"- {r.arm} round {r.round}: only {r.requests} requests at 1 connection "
        f"(< {MIN_LATENCY_SAMPLES}; raise --latency-seconds)"
        for r in runs
        if r.connections == 1 and r.requests < MIN_LATENCY_SAMPLES
    ]
    out += [
        f"- streaming {arm}: {s.failures} failed requests" for arm, s in stats.items() if s.failures
    ]
    out += pace_warnings(runs)
    other = median([r.cpu.get("other", 0.0) for r in runs])
    if other > 20:
        out.append(
            f"- other processes used ~{other:.0f} % of a core during the runs; "
            "the arms had less than the whole box"
        )
    for arm in ARM_NAMES:
        rps = [r.rps for r in pick(runs, arm, 16)]
        if len(rps) > 1 and (max(rps) - min(rps)) / median(rps) > 0.15:
            out.append(
                f"- {arm} req/s @16 varies {min(rps):,.0f}..{max(rps):,.0f} across "
                "rounds (noisy box?)"
            )
    return out or ["- none"]


def pace(runs: Sequence[WrkRun], connections: int) -> tuple[float, float]:
    """(bare req/s / direct req/s, simulator %cpu during bare) at ``connections``."""
    bare = pick(runs, "bare", connections)
    direct = median([r.rps for r in pick(runs, "direct", connections)])
    simulator = median([r.cpu.get("simulator", 0.0) for r in bare])
    return median([r.rps for r in bare]) / direct, simulator


def simulator_bound(runs: Sequence[WrkRun], connections: int) -> bool:
    """A bare proxy about as fast as no proxy, or a simulator using a whole core, means
    the proxies were not what limited req/s."""
    bare_share, simulator = pace(runs, connections)
    return bare_share >= 0.9 or simulator >= 85


def pace_warnings(runs: Sequence[WrkRun]) -> list[str]:
    out = []
    for connections in LOAD_CONNECTIONS:
        if simulator_bound(runs, connections):
            bare_share, simulator = pace(runs, connections)
            out.append(
                f"- @{connections}: the simulator (or the box) set the pace: bare reached "
                f"{bare_share:.0%} of direct's req/s, the simulator used {simulator:.0f} % "
                "of a core; tollhouse / bare looks better than it is"
            )
    return out


def runs_table(runs: Sequence[WrkRun]) -> str:
    rows = [
        [
            str(r.round),
            r.arm,
            str(r.connections),
            f"{r.requests:,}",
            f"{r.rps:,.0f}",
            f"{r.p50_ms:.3f}",
            f"{r.p90_ms:.3f}",
            f"{r.p99_ms:.3f}",
            str(r.errors),
        ]
        for r in runs
    ]
    return md_table(
        ["round", "arm", "conns", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"], rows
    )


# ----------------------------------------------------------------------------- main


@dataclass
class Outcome:
    runs: list[WrkRun]
    streams: dict[str, StreamStats]
    memory: list[MemorySample]
    ledger: list[str]
    shutdown: str


def report(outcome: Outcome, opts: Options, tollhouse: str) -> tuple[str, str]:
    """(printed summary, full markdown for the results directory)."""
    summary = summarise(outcome.runs)
    setup = (
        f"{opts.rounds} interleaved round(s), medians; {opts.latency_seconds}s at 1 conn, "
        f"{opts.load_seconds}s at {'/'.join(map(str, LOAD_CONNECTIONS))} conns, wrk "
        f"-t{opts.threads}; {os.cpu_count()} CPUs shared by every process, nothing pinned; "
        f"tollhouse = {tollhouse}"
    )
    parts = [
        "# tollhouse overhead",
        "",
        setup,
        "",
        main_table(summary),
        "",
        *ratio_lines(summary),
        "",
        "## Targets",
        *target_lines(summary, outcome.runs),
        "",
        f"## Streaming (Python client, 1 connection, {opts.stream_requests} per arm)",
        "",
        stream_table(outcome.streams),
        "",
        "## CPU at 16 connections (% of one core)",
        "",
        cpu_table(outcome.runs),
        "",
        cpu_ratio_line(outcome.runs),
        "",
        "## Memory (tollhouse RSS)",
        *memory_lines(outcome.memory),
        "",
        "## Ledger",
        *[f"- {x}" for x in outcome.ledger],
        f"- shutdown: {outcome.shutdown}",
        "",
        "## Warnings",
        *warnings(outcome.runs, outcome.streams),
    ]
    printed = "\n".join(parts)
    return printed, printed + "\n\n## Every run\n\n" + runs_table(outcome.runs) + "\n"


def stop_gateway(fleet: Fleet) -> str:
    rc = fleet.stop("tollhouse", grace=15.0)
    if rc is None:
        return "did not exit within 15 s of SIGINT; killed (ledger may be incomplete)"
    return f"SIGINT, exited with rc {rc}"


def execute(fleet: Fleet, tmp: Path, tollhouse: str, opts: Options, out: Path) -> Outcome:
    t_start = time.monotonic()
    arms = start_arms(fleet, tollhouse, tmp)
    memory = [MemorySample("idle after start", 0.0, 0, fleet.rss_mb("tollhouse"))]
    for arm in arms:
        sanity_check(arm)
    print("warm-up ...", flush=True)
    warmed = warm_up(arms, opts, out / "raw")["tollhouse"]
    memory.append(
        MemorySample("after warm-up", time.monotonic() - t_start, warmed, fleet.rss_mb("tollhouse"))
    )
    runs = run_rounds(fleet, arms, opts, out / "raw", memory, t_start, warmed)
    print("streaming ...", flush=True)
    streams = uvloop.run(stream_phase(arms, opts))
    streamed = len(streams["tollhouse"].ttfb_ms) + streams["tollhouse"].failures + STREAM_WARMUP
    served = warmed + sum(r.requests for r in runs if r.arm == "tollhouse") + streamed + 1
    memory.append(
        MemorySample(
            "after all load", time.monotonic() - t_start, served, fleet.rss_mb("tollhouse")
        )
    )
    shutdown = stop_gateway(fleet)
    db = tmp / "home" / "ledger.db"
    ledger = ledger_report(db, streamed, served)
    if db.exists():
        shutil.copy(db, out / "ledger.db")
    return Outcome(runs, streams, memory, ledger, shutdown)


def run(opts: Options) -> None:
    require_wrk()
    tollhouse = find_tollhouse(opts.tollhouse)
    check_commands(tollhouse)
    out = opts.results / time.strftime("%Y%m%d-%H%M%S")
    (out / "raw").mkdir(parents=True)
    (out / "logs").mkdir()
    print(f"results -> {out}", flush=True)
    try:
        outcome = measure_all(tollhouse, opts, out)
    except BaseException as exc:  # a partial results directory says why it is partial
        (out / "INCOMPLETE.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        raise
    printed, full = report(outcome, opts, tollhouse)
    (out / "results.md").write_text(full)
    (out / "results.json").write_text(
        json.dumps(
            {
                "runs": [asdict(r) | {"rps": r.rps} for r in outcome.runs],
                "summary": summarise(outcome.runs),
                "streams": {k: asdict(v) for k, v in outcome.streams.items()},
                "memory": [asdict(m) for m in outcome.memory],
                "ledger": outcome.ledger,
            },
            indent=1,
        )
    )
    print("\n" + printed + f"\n\nraw output, logs and results.md in {out}")


def measure_all(tollhouse: str, opts: Options, out: Path) -> Outcome:
    with (
        tempfile.TemporaryDirectory(prefix="tollhouse-bench-") as tmp,
        Fleet(out / "logs") as fleet,
    ):
        outcome = execute(fleet, Path(tmp), tollhouse, opts, out)
        shutil.copy(Path(tmp) / "tollhouse.toml", out / "tollhouse.toml")
    return outcome


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description="Overhead of tollhouse vs direct and a bare proxy.")
    p.add_argument("--quick", action="store_true", help="~1 minute smoke run (1 round)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    p.add_argument("--latency-seconds", type=int, help="1-connection run length (default 5)")
    p.add_argument("--load-seconds", type=int, help="16/64-connection run length (default 5)")
    p.add_argument("--stream-requests", type=int, help="streamed requests per arm (default 300)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--tollhouse", help="tollhouse executable (default: next to this python)")
    p.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    a = p.parse_args(argv)
    quick = a.quick
    return Options(
        rounds=a.rounds or (1 if quick else 3),
        latency_seconds=a.latency_seconds or (4 if quick else 5),
        load_seconds=a.load_seconds or (3 if quick else 5),
        warmup_seconds=1 if quick else 2,
        stream_requests=a.stream_requests or (60 if quick else 300),
        threads=a.threads,
        tollhouse=a.tollhouse,
        results=a.results,
    )


def _terminated(signum: int, frame: object) -> None:
    print("\nterminated (SIGTERM); stopping the servers", file=sys.stderr, flush=True)
    sys.exit(143)


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the servers are stopped either way."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


def run_cli(parse: Any, body: Any, argv: Sequence[str] | None) -> int:
    """A bench's entry point: clean errors, servers stopped on Ctrl-C or SIGTERM."""
    opts = parse(argv)
    try:
        with sigterm_as_exit():
            body(opts)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
