"""Capacity benchmark: 25 agents against a 500 requests/minute quota (issue 3).

The provider simulator enforces ``--rpm`` on the primary model only
(``gpt-4o-mini``; ``gpt-4o`` on the same simulator is unlimited). 25 agent
tasks of 20 sequential non-streaming chat completions each (one asyncio task
and one ``openai.AsyncOpenAI`` client per agent, SDK defaults: 2 retries)
run three ways, one after the other, each against a fresh simulator:

- ``direct``:             SDK -> simulator
- ``tollhouse``:          SDK -> ``tollhouse serve`` (provider ``rpm`` set) -> simulator
- ``tollhouse+fallback``: same, model ``smart`` = primary, then an unlimited backup model

    python bench/capacity.py            # ~3-4 minutes: 500 calls per arm at 500 rpm
    python bench/capacity.py --quick    # ~1.5 minutes: 10 x 6 calls at 120 rpm

Results (JSON and markdown) go to ``bench/results/capacity-<timestamp>/``.
See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai
import uvloop
from aiohttp import ClientSession, ClientTimeout
from overhead import (
    HOST,
    BenchError,
    Fleet,
    find_tollhouse,
    md_table,
    run_cli,
    verdict,
)

from tollhouse.testing import free_port

BENCH_DIR = Path(__file__).resolve().parent
PRIMARY_MODEL = "gpt-4o-mini"
BACKUP_MODEL = "gpt-4o"
PROMPT: Any = [{"role": "user", "content": "Say hello"}]
MAX_TOKENS = 16
API_KEY = "sk-bench"
TARGET_429_SHARE = 0.01
TARGET_QUOTA_USE = 0.95
STATS_EVERY_S = 1.0
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class ArmSpec:
    name: str
    via_gateway: bool
    model: str
    """The model the agents ask for."""
    sanity_model: str
    """One request before the run; an unlimited model, so no quota is spent."""


ARMS = (
    ArmSpec("direct", False, PRIMARY_MODEL, BACKUP_MODEL),
    ArmSpec("tollhouse", True, f"primary/{PRIMARY_MODEL}", f"backup/{BACKUP_MODEL}"),
    ArmSpec("tollhouse+fallback", True, "smart", f"backup/{BACKUP_MODEL}"),
)


@dataclass
class Options:
    rpm: int
    tasks: int
    calls: int
    burst_s: float
    arms: list[str]
    tollhouse: str | None
    results: Path

    @property
    def demand_s(self) -> float:
        """How long the quota alone makes the calls take."""
        return self.tasks * self.calls * 60 / self.rpm


@dataclass
class TaskResult:
    seconds: float = 0.0
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)
    """The first message of each error kind."""
    served_by: Counter[str] = field(default_factory=Counter)


@dataclass
class ArmResult:
    arm: str
    skipped: str | None = None
    """Why the arm did not run (one line); ``skip_log`` has the evidence."""
    skip_log: str = ""
    tasks: int = 0
    calls_per_task: int = 0
    completed: int = 0
    client_errors: int = 0
    client_429s: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)
    provider_429s: int = 0
    upstream_requests: int = 0
    primary_admitted: int = 0
    demand_s: float = 0.0
    task_p50_s: float = math.nan
    task_p95_s: float = math.nan
    served_by: dict[str, int] = field(default_factory=dict)
    timeline: list[dict[str, float]] = field(default_factory=list)
    stats_before: dict[str, Any] = field(default_factory=dict)
    stats_after: dict[str, Any] = field(default_factory=dict)

    @property
    def share_429(self) -> float:
        return self.provider_429s / self.upstream_requests if self.upstream_requests else math.nan

    def quota_use(self, rpm: int) -> float:
        """Primary-model requests admitted per minute of demand, over the quota."""
        if not self.demand_s:
            return math.nan
        return self.primary_admitted / (rpm * self.demand_s / 60)


# ----------------------------------------------------------------------------- processes


def start_simulator(fleet: Fleet, tollhouse: str, arm: str, opts: Options) -> int:
    port = free_port()
    argv = [tollhouse, "simulate", "--host", HOST, "--port", str(port)]
    argv += ["--rpm", str(opts.rpm), "--quota-burst", str(opts.burst_s)]
    argv += ["--quota-models", PRIMARY_MODEL]
    fleet.start(f"{arm}-simulator", argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
    fleet.wait_ready(f"{arm}-simulator", port)
    return port


def write_config(directory: Path, sim_port: int, port: int, rpm: int) -> Path:
    """The config of issue 3: a limited primary and an unlimited backup on one simulator."""
    upstream = f"http://{HOST}:{sim_port}/openai/v1"
    path = directory / "tollhouse.toml"
    path.write_text(
        f'[server]\nhost = "{HOST}"\nport = {port}\n\n'
        f'[ledger]\npath = "{directory / "ledger.db"}"\n\n'
        f'[[providers]]\nname = "primary"\nkind = "openai"\nbase_url = "{upstream}"\n'
        f'api_key_env = "BENCH_KEY"\nrpm = {rpm}\n\n'
        f'[[providers]]\nname = "backup"\nkind = "openai"\nbase_url = "{upstream}"\n'
        f'api_key_env = "BENCH_KEY"\n\n'
        f"[models.smart]\n"
        f'chain = ["primary/{PRIMARY_MODEL}", "backup/{BACKUP_MODEL}"]\n'
    )
    return path


def start_gateway(
    fleet: Fleet, tollhouse: str, arm: str, tmp: Path, sim_port: int, rpm: int
) -> int:
    port = free_port()
    config = write_config(tmp, sim_port, port, rpm)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOLLHOUSE_HOME": str(home), "BENCH_KEY": API_KEY}
    argv = [tollhouse, "serve", "--config", str(config), "--host", HOST, "--port", str(port)]
    fleet.start(f"{arm}-tollhouse", argv, env)
    fleet.wait_ready(f"{arm}-tollhouse", port)
    return port


def gateway_failure(exc: BenchError) -> tuple[str, str]:
    """(one line saying why the gateway arm cannot run, the log that shows it)."""
    text = str(exc)
    last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), text)
    if "unknown key" in text:
        return (
            "`tollhouse serve` rejects the capacity config (providers.rpm / [models]) as "
            f"unknown keys: this tollhouse predates the capacity feature ({last})",
            text,
        )
    return f"`tollhouse serve` did not start or answer: {last}", text


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def sanity_check(arm: str, base_url: str, model: str) -> None:
    """One request by hand: a fast error would otherwise look like a finished run."""
    body = {"model": model, "messages": PROMPT, "max_tokens": MAX_TOKENS}
    try:
        answer = post_json(base_url + "/chat/completions", body)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        detail = exc.read().decode(errors="replace")[:500] if hasattr(exc, "read") else ""
        raise BenchError(f"{arm}: sanity request ({model}) failed: {exc} {detail}") from exc
    if not answer.get("choices"):
        raise BenchError(f"{arm}: sanity answer has no choices: {str(answer)[:300]}")


def sim_stats(sim_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{HOST}:{sim_port}/_sim/stats", timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


# ----------------------------------------------------------------------------- the agents


def error_label(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__} {status}" if status else type(exc).__name__


async def agent(client: openai.AsyncOpenAI, model: str, calls: int) -> TaskResult:
    """One agent: ``calls`` sequential calls; a failed call is recorded and the agent goes on
    (so every arm offers the provider the same number of calls)."""
    result = TaskResult()
    start = time.monotonic()
    for _ in range(calls):
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=PROMPT, max_tokens=MAX_TOKENS
            )
            raw.parse()
        except openai.APIError as exc:
            label = error_label(exc)
            result.errors.append(label)
            result.samples.setdefault(label, str(exc)[:300])
            continue
        result.ok += 1
        result.served_by[raw.headers.get("x-tollhouse-served-by", "(not reported)")] += 1
    result.seconds = time.monotonic() - start
    return result


def primary_counts(stats: dict[str, Any]) -> tuple[int, int]:
    counts = stats.get("by_model", {}).get(PRIMARY_MODEL, {})
    return int(counts.get("admitted", 0)), int(counts.get("rate_limited", 0))


async def sample_stats(
    sim_port: int, arm: str, stop: asyncio.Event, t0: float
) -> list[dict[str, float]]:
    """The simulator's counts every second while the agents run, and a progress line."""
    timeline: list[dict[str, float]] = []
    url = f"http://{HOST}:{sim_port}/_sim/stats"
    next_print = PROGRESS_EVERY_S
    async with ClientSession(timeout=ClientTimeout(total=10)) as session:
        while True:
            async with session.get(url) as response:
                stats = await response.json()
            admitted, _ = primary_counts(stats)
            t = time.monotonic() - t0
            timeline.append(
                {
                    "t": round(t, 3),
                    "admitted": stats["admitted"],
                    "rate_limited": stats["rate_limited"],
                    "primary_admitted": admitted,
                }
            )
            if t >= next_print:
                print(
                    f"  {arm:>18} {t:5.0f}s  admitted {stats['admitted']:>5}  "
                    f"429s {stats['rate_limited']:>6}",
                    flush=True,
                )
                next_print += PROGRESS_EVERY_S
            if stop.is_set():
                return timeline
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATS_EVERY_S)


async def drive(
    base_url: str, model: str, opts: Options, sim_port: int, arm: str
) -> tuple[list[TaskResult], list[dict[str, float]], float]:
    """Run the agents; returns their results, the stats timeline and the demand time."""
    clients = [openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY) for _ in range(opts.tasks)]
    stop = asyncio.Event()
    t0 = time.monotonic()

    async def agents() -> list[TaskResult]:
        try:
            return await asyncio.gather(*(agent(c, model, opts.calls) for c in clients))
        finally:
            stop.set()

    try:
        results, timeline = await asyncio.wait_for(
            asyncio.gather(agents(), sample_stats(sim_port, arm, stop, t0)),
            timeout=3 * opts.demand_s + 300,
        )
    except TimeoutError as exc:
        raise BenchError(
            f"{arm}: agents still running after {3 * opts.demand_s + 300:.0f}s"
        ) from exc
    finally:
        for client in clients:
            await client.close()
    return results, timeline, max(r.seconds for r in results)


# ----------------------------------------------------------------------------- one arm


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise(
    spec: ArmSpec,
    opts: Options,
    results: list[TaskResult],
    before: dict[str, Any],
    after: dict[str, Any],
) -> ArmResult:
    errors = Counter(label for r in results for label in r.errors)
    served = sum((r.served_by for r in results), Counter[str]())
    admitted_before, _ = primary_counts(before)
    admitted_after, _ = primary_counts(after)
    limited = after["rate_limited"] - before["rate_limited"]
    return ArmResult(
        arm=spec.name,
        tasks=opts.tasks,
        calls_per_task=opts.calls,
        completed=sum(1 for r in results if r.ok == opts.calls),
        client_errors=sum(errors.values()),
        client_429s=sum(n for label, n in errors.items() if label.endswith(" 429")),
        error_kinds=dict(errors.most_common()),
        error_samples={k: v for r in results for k, v in r.samples.items()},
        provider_429s=limited,
        upstream_requests=after["admitted"] - before["admitted"] + limited,
        primary_admitted=admitted_after - admitted_before,
        demand_s=max(r.seconds for r in results),
        task_p50_s=percentile([r.seconds for r in results], 50),
        task_p95_s=percentile([r.seconds for r in results], 95),
        served_by=dict(served.most_common()),
        stats_before=before,
        stats_after=after,
    )


def run_arm(spec: ArmSpec, tollhouse: str, opts: Options, out: Path) -> ArmResult:
    print(f"{spec.name}: starting a fresh simulator ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="tollhouse-capacity-") as tmp:
        with Fleet(out / "logs") as fleet:
            arm = run_in_fleet(spec, tollhouse, opts, fleet, Path(tmp))
        keep_files(Path(tmp), out, spec.name)
    if not arm.skipped:
        print(
            f"{spec.name}: done in {arm.demand_s:.1f}s, {arm.completed}/{arm.tasks} tasks "
            f"completed, {arm.client_errors} client errors, {arm.provider_429s} provider 429s",
            flush=True,
        )
    return arm


def run_in_fleet(
    spec: ArmSpec, tollhouse: str, opts: Options, fleet: Fleet, tmp: Path
) -> ArmResult:
    sim_port = start_simulator(fleet, tollhouse, spec.name, opts)
    base_url = f"http://{HOST}:{sim_port}/openai/v1"
    if spec.via_gateway:
        try:
            port = start_gateway(fleet, tollhouse, spec.name, tmp, sim_port, opts.rpm)
            base_url = f"http://{HOST}:{port}/v1"
            sanity_check(spec.name, base_url, spec.sanity_model)
        except BenchError as exc:
            reason, log = gateway_failure(exc)
            print(f"{spec.name}: SKIPPED: {reason}", flush=True)
            return ArmResult(spec.name, skipped=reason, skip_log=log)
    else:
        sanity_check(spec.name, base_url, spec.sanity_model)
    before = sim_stats(sim_port)
    print(
        f"{spec.name}: {opts.tasks} agents x {opts.calls} calls of {spec.model!r} "
        f"(>= {opts.demand_s:.0f}s at {opts.rpm} rpm) ...",
        flush=True,
    )
    results, timeline, _ = uvloop.run(drive(base_url, spec.model, opts, sim_port, spec.name))
    after = sim_stats(sim_port)
    if spec.via_gateway:  # SIGINT, so it flushes its ledger before the copy
        fleet.stop(f"{spec.name}-tollhouse", grace=15.0)
    arm = summarise(spec, opts, results, before, after)
    arm.timeline = timeline
    return arm


def keep_files(tmp: Path, out: Path, arm: str) -> None:
    """The gateway's config and ledger, next to the results."""
    for name in ("tollhouse.toml", "ledger.db"):
        if (tmp / name).exists():
            shutil.copy(tmp / name, out / f"{arm}-{name}")


# ----------------------------------------------------------------------------- report


def pct(value: float) -> str:
    return "-" if value != value else f"{value:.1%}"


def seconds(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"


def results_table(arms: Sequence[ArmResult], rpm: int) -> str:
    header = [
        "arm",
        "tasks completed",
        "client errors",
        "client 429s",
        "provider 429s",
        "upstream requests",
        "429 share",
        "task p50 s",
        "task p95 s",
        "quota used",
        "wall s",
    ]
    rows = []
    for a in arms:
        if a.skipped:
            rows.append([a.arm, "skipped", *["-"] * (len(header) - 2)])
            continue
        rows.append(
            [
                a.arm,
                f"{a.completed}/{a.tasks}",
                str(a.client_errors),
                str(a.client_429s),
                f"{a.provider_429s:,}",
                f"{a.upstream_requests:,}",
                pct(a.share_429),
                seconds(a.task_p50_s),
                seconds(a.task_p95_s),
                pct(a.quota_use(rpm)),
                seconds(a.demand_s),
            ]
        )
    return md_table(header, rows)


def target_lines(arm: ArmResult, rpm: int) -> list[str]:
    if arm.skipped:
        return [f"- {arm.arm}: skipped"]
    use = arm.quota_use(rpm)
    checks = [
        (f"every task completes ({arm.completed}/{arm.tasks})", arm.completed == arm.tasks),
        (f"no client-visible 429 ({arm.client_429s})", arm.client_429s == 0),
        (
            f"< {TARGET_429_SHARE:.0%} of upstream requests answered 429 ({pct(arm.share_429)})",
            arm.share_429 < TARGET_429_SHARE,
        ),
        (
            f">= {TARGET_QUOTA_USE:.0%} of the quota used while there is demand ({pct(use)})",
            use >= TARGET_QUOTA_USE,
        ),
    ]
    return [f"- {arm.arm}: {text} -> {verdict(ok)}" for text, ok in checks]


def detail_lines(arm: ArmResult) -> list[str]:
    if arm.skipped:
        return [f"- {arm.arm}: skipped: {arm.skipped}"]
    errors = ", ".join(f"{k}: {v}" for k, v in arm.error_kinds.items()) or "none"
    served = ", ".join(f"{k}: {v}" for k, v in arm.served_by.items()) or "none"
    lines = [
        f"- {arm.arm}: client errors by kind: {errors}; answers served by: {served}; "
        f"primary-model requests admitted: {arm.primary_admitted}"
    ]
    return lines + [f"  - e.g. {k}: {v}" for k, v in arm.error_samples.items()]


def report(arms: Sequence[ArmResult], opts: Options, tollhouse: str, logs: bool = True) -> str:
    """The markdown report; ``logs=False`` leaves out the logs of skipped arms (for the
    terminal)."""
    setup = (
        f"{opts.tasks} agents x {opts.calls} sequential calls per arm (one AsyncOpenAI client "
        f"each, SDK defaults: max_retries=2); simulator quota {opts.rpm} rpm on {PRIMARY_MODEL} "
        f"(token bucket, burst {opts.burst_s:g}s = "
        f"{max(1, math.floor(opts.rpm * opts.burst_s / 60))} requests), {BACKUP_MODEL} "
        f"unlimited; a fresh simulator per arm; {os.cpu_count()} CPUs; tollhouse = {tollhouse}"
    )
    parts = [
        "# tollhouse capacity",
        "",
        setup,
        "",
        results_table(arms, opts.rpm),
        "",
        "## Targets",
        *[line for arm in arms for line in target_lines(arm, opts.rpm)],
        "",
        "## Details",
        *[line for arm in arms for line in detail_lines(arm)],
    ]
    evidence = [f"### {a.arm}\n\n```\n{a.skip_log}\n```" for a in arms if a.skip_log]
    if logs and evidence:
        parts += ["", "## Why arms were skipped", "", *evidence]
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- main


def run(opts: Options) -> None:
    tollhouse = find_tollhouse(opts.tollhouse)
    out = opts.results / time.strftime("capacity-%Y%m%d-%H%M%S")
    (out / "logs").mkdir(parents=True)
    print(f"results -> {out}", flush=True)
    arms: list[ArmResult] = []
    try:
        for spec in ARMS:
            if spec.name in opts.arms:
                arms.append(run_arm(spec, tollhouse, opts, out))
    except BaseException as exc:  # a partial results directory says why it is partial
        (out / "INCOMPLETE.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        raise
    finally:
        write_results(out, arms, opts, tollhouse)
    print(
        "\n"
        + report(arms, opts, tollhouse, logs=False)
        + f"\nraw results, logs and results.md in {out}"
    )


def write_results(out: Path, arms: Sequence[ArmResult], opts: Options, tollhouse: str) -> None:
    (out / "results.md").write_text(report(arms, opts, tollhouse))
    payload = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "tollhouse": tollhouse,
        "arms": [
            asdict(a) | {"share_429": a.share_429, "quota_use": a.quota_use(opts.rpm)} for a in arms
        ],
    }
    (out / "results.json").write_text(json.dumps(payload, indent=1))


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(
        description="Agents against a provider quota, with and without tollhouse."
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 120 rpm, 10 agents x 6 calls")
    p.add_argument(
        "--rpm", type=int, help="the provider's quota on the primary model (default 500)"
    )
    p.add_argument("--tasks", type=int, help="concurrent agents (default 25)")
    p.add_argument("--calls", type=int, help="sequential calls per agent (default 20)")
    p.add_argument(
        "--burst-seconds",
        type=float,
        default=1.0,
        help="seconds' worth of quota the provider admits at once (default 1: per-second "
        "enforcement, as OpenAI documents; 60 lets a whole minute's quota through at once)",
    )
    p.add_argument(
        "--arms",
        default=",".join(a.name for a in ARMS),
        help="comma-separated arms to run (default: all three, in order)",
    )
    p.add_argument("--tollhouse", help="tollhouse executable (default: next to this python)")
    p.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    a = p.parse_args(argv)
    arms = [name.strip() for name in a.arms.split(",") if name.strip()]
    unknown = set(arms) - {spec.name for spec in ARMS}
    if unknown:
        p.error(
            f"unknown arm(s) {', '.join(sorted(unknown))}; use {', '.join(s.name for s in ARMS)}"
        )
    return Options(
        rpm=a.rpm or (120 if a.quick else 500),
        tasks=a.tasks or (10 if a.quick else 25),
        calls=a.calls or (6 if a.quick else 20),
        burst_s=a.burst_seconds,
        arms=arms,
        tollhouse=a.tollhouse,
        results=a.results,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
