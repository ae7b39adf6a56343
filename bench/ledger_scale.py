"""A year of a team's calls: how fast every report and dashboard view answers (issue 21).

Builds a ledger of N rows (default 10 M) spread evenly over the last 365 days,
40 projects, 6 models on 3 providers, a ``purpose`` tag with 5 values, 1 % of
calls unpriced and 2 % failed, with bulk SQL (not through the gateway: that
is the performance bench's job), then times on SQLite and/or Postgres:

- every ``tollhouse report`` variant the README shows, as a new process
  (``python -m tollhouse report ...``: interpreter start included), target ≤ 1 s;
- every dashboard API view's query (the function the handler runs, with its
  own connection, as the server opens one per request) over 1 d, 30 d (the
  default), 365 d and all time, target ≤ 300 ms;
- ``ledger rebuild`` (target ≤ 2 min for 10 M rows) and ``ledger verify``.

The totals are built the slow, honest way: rows first (trigger off, as in a
ledger written before the totals existed), then a timed rebuild.

    .venv/bin/python bench/ledger_scale.py --rows 10000000 --engine sqlite
    .venv/bin/python bench/ledger_scale.py --rows 2000000 --engine postgres
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tollhouse.dashboard import queries  # noqa: E402
from tollhouse.ledger import totals, upkeep  # noqa: E402
from tollhouse.ledger.migrations import DIALECT_SQL  # noqa: E402
from tollhouse.ledger.report import parse_time  # noqa: E402
from tollhouse.ledger.store import connect, transaction  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/tollhouse_bench"
DAY_SECONDS = 86400

MODELS = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gemini-2.5-pro", "gemini"),
    ("gemini-2.5-flash", "gemini"),
]
PURPOSES = ["feature", "bugfix", "review", "docs", "triage"]

REPORTS = [
    ["--by", "project"],
    ["--by", "model", "--since", "30d"],
    ["--by", "day", "--since", "90d"],
    ["--by", "tag:purpose"],
    ["--by", "tag:purpose", "--since", "30d"],
    ["--by", "project,model", "--since", "365d"],
    ["--by", "project,model,day"],
    ["--requests", "--project", "project-07", "--limit", "50"],
]
WINDOWS = ["1d", "30d", "365d", "all"]


def _case(expr: str, values: list[str]) -> str:
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"CASE {expr} {whens} END"


def select_rows(postgres: bool, start: int, step: float) -> str:
    """The SELECT that makes row ``i`` of the bench ledger (``i`` from a series)."""
    if postgres:
        ts = (
            f"to_char(to_timestamp({start} + i * {step}) AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS') || '.000000+00:00'"
        )
        div, cost = "div(i, {})", "'0.' || lpad(((i * 7919) % 100000000)::text, 8, '0')"
    else:
        ts = f"strftime('%Y-%m-%dT%H:%M:%S', {start} + i * {step}, 'unixepoch') || '.000000+00:00'"
        div, cost = "(i / {})", "printf('0.%08d', (i * 7919) % 100000000)"
    model = _case(f"{div.format(40)} % 6", [m for m, _ in MODELS])
    provider = _case(f"{div.format(40)} % 6", [p for _, p in MODELS])
    purpose = _case(f"{div.format(240)} % 5", PURPOSES)
    project = "lpad((i % 40)::text, 2, '0')" if postgres else "printf('%02d', i % 40)"
    tags = f"""'{{"purpose": "' || {purpose} || '"}}'"""
    return (
        f"SELECT {ts}, 'req-' || i, 'project-' || {project}, 'header', {tags}, 'openai', "
        f"{model}, {model}, {provider}, CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, 0, 0, "
        f"100 + i % 997, 20 + i % 389, CASE WHEN i % 100 = 7 THEN NULL ELSE {cost} END, "
        "CASE WHEN i % 100 = 7 THEN 'unpriced' ELSE 'genai-prices' END, 120.5, 1, 0"
    )


INSERT_COLUMNS = (
    "ts, request_id, project, attribution, tags, dialect, model_requested, model_served, "
    "provider, status, stream, incomplete, input_tokens, output_tokens, cost_usd, price_source, "
    "latency_ms, attempts, queue_wait_ms"
)


def build(location: Any, rows: int) -> float:
    """Fill the ledger with ``rows`` rows, totals left behind (as an old ledger's)."""
    conn = connect(location)
    postgres = getattr(conn, "dialect", "sqlite") == "postgres"
    now = int(datetime.now(UTC).timestamp())
    start, step = now - 365 * DAY_SECONDS, 365 * DAY_SECONDS / rows
    began = time.perf_counter()
    conn.execute("DROP TRIGGER IF EXISTS requests_totals" + (" ON requests" if postgres else ""))
    if not postgres:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
    chunk = 1_000_000
    for first in range(0, rows, chunk):
        last = min(first + chunk, rows) - 1
        series = (
            f"FROM generate_series({first}::bigint, {last}::bigint) AS s(i)"
            if postgres
            else f"FROM (WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL "
            f"SELECT i + 1 FROM s WHERE i < {last}) SELECT i FROM s)"
        )
        insert = f"INSERT INTO requests ({INSERT_COLUMNS}) {select_rows(postgres, start, step)}"
        with transaction(conn):
            if postgres:  # as written: no placeholders to translate
                conn.script(f"{insert} {series}")
            else:
                conn.execute(f"{insert} {series}")
        print(f"  {last + 1:,} rows", file=sys.stderr)
    with transaction(conn):
        if postgres:
            conn.execute("DROP FUNCTION IF EXISTS tollhouse_requests_totals()")
            conn.script(DIALECT_SQL[6]["postgres"])
        else:
            conn.execute(DIALECT_SQL[6]["sqlite"])
        conn.execute("DELETE FROM totals_day")
        totals.set_state(conn, "behind")
    if postgres:
        conn.execute("VACUUM ANALYZE requests")
    else:
        conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - began


CPU: list[tuple[str, float]] = []  # (what, median CPU seconds): ours and our children's


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], Any], runs: int = 3, what: str = "") -> float:
    """The median wall time of ``runs`` calls, in seconds (warm cache).

    The median CPU time (this process and the report processes it ran) goes to
    :data:`CPU`: on a shared box wall time also counts other people's work.
    """
    fn()  # warm
    times, cpu = [], []
    for _ in range(runs):
        began, used = time.perf_counter(), _cpu()
        fn()
        times.append(time.perf_counter() - began)
        cpu.append(_cpu() - used)
    CPU.append((what, statistics.median(cpu)))
    return statistics.median(times)


def cli_report(location: Any, args: list[str]) -> Callable[[], None]:
    command = [sys.executable, "-m", "tollhouse", "report", "--ledger", str(location)]
    command += [*args, "--format", "csv"]

    def run() -> None:
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)

    return run


def dashboard_views(location: Any) -> dict[str, Callable[..., Any]]:
    def read(query: Callable[[Any], Any]) -> Any:
        conn = connect(location, readonly=True)  # as the server: one per request
        conn.row_factory = sqlite3.Row
        try:
            return query(conn)
        finally:
            conn.close()

    def view(name: str, window: str) -> Callable[[], Any]:
        since = parse_time(None if window == "all" else window)
        calls: dict[str, Callable[[Any], Any]] = {
            "overview": lambda c: queries.overview(c, since, None),
            "timeseries by project": lambda c: queries.timeseries(c, "project", since, None),
            "timeseries by model": lambda c: queries.timeseries(c, "model", since, None),
            "tags": lambda c: queries.tags(c, queries.tag_keys(c, since, None)[0], since, None),
            "unpriced": lambda c: queries.unpriced(c, since, None),
            "requests (first page)": lambda c: (
                queries.recent(c, {"since": window}, 100)
                if window != "all"
                else queries.recent(c, {}, 100)
            ),
            "project page": lambda c: queries.project_report(c, "project-07", since, None),
        }
        return lambda: read(calls[name])

    return {"view": view}


def deep_page(location: Any) -> float:
    """The request list 5,000 pages deep (a cursor from the middle of the year)."""
    conn = connect(location, readonly=True)
    conn.row_factory = sqlite3.Row
    middle = (datetime.now(UTC) - timedelta(days=180)).isoformat(timespec="microseconds")
    row = conn.execute(
        "SELECT ts, id FROM requests WHERE ts >= ? ORDER BY ts LIMIT 1", (middle,)
    ).fetchone()
    cursor = f"{row[0]}~{row[1]}"
    took = timed(
        lambda: queries.recent(conn, {"before": cursor}, 100), what="requests 180 days deep"
    )
    conn.close()
    return took


def measure(location: Any, label: str, *, upkeep_too: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"engine": label}
    if upkeep_too:
        out.update(rebuild_and_verify(location, label))
    out.update(reads(location))
    return out


def rebuild_and_verify(location: Any, label: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    conn = connect(location)
    began, used = time.perf_counter(), _cpu()
    counted = upkeep.rebuild(conn)
    out["rebuild_s"] = round(time.perf_counter() - began, 1)
    out["rebuild_cpu_s"] = round(_cpu() - used, 1)
    out["rows"] = counted
    began, used = time.perf_counter(), _cpu()
    problems = upkeep.verify(conn)
    out["verify_s"] = round(time.perf_counter() - began, 1)
    out["verify_cpu_s"] = round(_cpu() - used, 1)
    out["verify_clean"] = not problems
    out["totals_rows"] = conn.execute("SELECT count(*) FROM totals_day").fetchone()[0]
    conn.close()
    print(f"{label}: rebuild {out['rebuild_s']} s, verify {out['verify_s']} s", file=sys.stderr)
    return out


def reads(location: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["reports_s"] = {
        " ".join(args): round(timed(cli_report(location, args), what=" ".join(args)), 3)
        for args in REPORTS
    }
    print(json.dumps(out["reports_s"], indent=1), file=sys.stderr)
    views = dashboard_views(location)["view"]
    names = [
        "overview",
        "timeseries by project",
        "timeseries by model",
        "tags",
        "unpriced",
        "requests (first page)",
        "project page",
    ]
    out["dashboard_ms"] = {
        f"{name} [{window}]": round(1000 * timed(views(name, window), what=f"{name} [{window}]"), 1)
        for name in names
        for window in WINDOWS
    }
    out["dashboard_ms"]["requests 180 days deep"] = round(1000 * deep_page(location), 1)
    print(json.dumps(out["dashboard_ms"], indent=1), file=sys.stderr)
    out["cpu_s"] = {what: round(cpu, 3) for what, cpu in CPU}
    CPU.clear()
    return out


def _fresh_postgres() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS tollhouse_bench WITH (FORCE)")
        admin.execute("CREATE DATABASE tollhouse_bench")
    return PG_BENCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/tollhouse-ledger-scale"))
    parser.add_argument("--reuse", action="store_true", help="Keep an existing built ledger.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--build-only", action="store_true", help="Build, don't measure.")
    parser.add_argument(
        "--reads-only", action="store_true", help="Time reports and views only (no rebuild)."
    )
    args = parser.parse_args()
    results = []
    for engine in ("sqlite", "postgres") if args.engine == "both" else (args.engine,):
        if engine == "sqlite":
            args.dir.mkdir(parents=True, exist_ok=True)
            location: Any = args.dir / f"ledger-{args.rows}.db"
            if not args.reuse:
                for part in args.dir.glob(location.name + "*"):
                    part.unlink()
        else:
            location = PG_BENCH if args.reuse else _fresh_postgres()
        if not args.reuse:
            took = build(location, args.rows)
            print(f"{engine}: built {args.rows:,} rows in {took:.0f} s", file=sys.stderr)
        if args.build_only:
            continue
        results.append(measure(location, engine, upkeep_too=not args.reads_only))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
