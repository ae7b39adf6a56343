"""What recording git context costs per call, and how long `tollhouse interest` takes.

One command, temporary repositories, stops by itself::

    .venv/bin/python bench/gitcontext.py                 # ~1 minute
    .venv/bin/python bench/gitcontext.py --commits 20000 --files 2000

Per call (in the attribution thread, never on the event loop):

- ``hit``: nothing in .git moved, dirty flag fresh: only stat() calls
- ``dirty re-check``: the flag older than its time to live: one ``git status``
- ``head moved``: a commit since the last call: ``git rev-parse`` + ``git status``
- ``first``: a repository never seen: rev-parse, rev-list of the roots, status

Then the interest report over a generated history (``--commits`` commits on
``--files`` files, a call before every 10th commit, every 50th commit rewriting
lines of an earlier one): first run (git log, blame, diff-tree) and second run
(what each commit rewrote read from the cache).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.interest.scripted import ScriptedLedger
from tollhouse.attribution.gitcontext import GitContextReader
from tollhouse.interest.report import repository_report

START = datetime(2026, 1, 1, tzinfo=UTC)


def timed(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1e6)
    return out


def show(label: str, micros: list[float]) -> None:
    micros.sort()
    p50 = statistics.median(micros)
    p99 = micros[min(len(micros) - 1, int(len(micros) * 0.99))]
    print(f"{label:<34} p50 {p50:9.1f} µs   p99 {p99:9.1f} µs   (n={len(micros)})")


def generate(root: Path, commits: int, files: int, seed: int = 7) -> list[tuple[str, int]]:
    """A linear history through git fast-import; (sha, time) of each commit, oldest first."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    contents = {f"src/f{i}.py": [f"line {i}.{j}\n" for j in range(40)] for i in range(files)}
    stream: list[bytes] = []
    when = int(START.timestamp())
    for n in range(commits):
        when += 3600
        changed = rng.sample(sorted(contents), k=min(3, files))
        for name in changed:
            lines = contents[name]
            at = rng.randrange(len(lines))
            lines[at : at + 2] = [f"c{n} {k}\n" for k in range(3)]
        stream.append(f"commit refs/heads/main\nmark :{n + 1}\n".encode())
        stream.append(f"committer dev <dev@example.com> {when} +0000\n".encode())
        stream.append(b"data 4\nwork\n")
        if n:
            stream.append(f"from :{n}\n".encode())
        for name in changed if n else sorted(contents):
            data = "".join(contents[name]).encode()
            stream.append(f"M 100644 inline {name}\ndata {len(data)}\n".encode() + data + b"\n")
    subprocess.run(
        ["git", "-C", str(root), "fast-import", "--quiet"], input=b"".join(stream), check=True
    )
    subprocess.run(["git", "-C", str(root), "checkout", "-q", "-f", "main"], check=True)
    out = subprocess.run(
        ["git", "-C", str(root), "log", "--reverse", "--format=%H %ct"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(sha, int(t)) for sha, t in (line.split() for line in out.splitlines())]


def per_call(root: Path, rounds: int) -> None:
    show(
        "first (a repository never seen)", timed(lambda: GitContextReader().for_directory(root), 20)
    )
    reader = GitContextReader(dirty_ttl=3600)
    reader.for_directory(root)
    show("hit (cached)", timed(lambda: reader.for_directory(root), rounds))
    clock = [0.0]
    ttl = GitContextReader(dirty_ttl=1.0, clock=lambda: clock[0])
    ttl.for_directory(root)

    def stale() -> None:
        clock[0] += 2.0
        ttl.for_directory(root)

    show("dirty re-check (git status)", timed(stale, 50))
    moving = GitContextReader(dirty_ttl=3600)
    moving.for_directory(root)
    samples = []
    for n in range(30):
        subprocess.run(
            ["git", "-C", str(root), "commit", "-q", "--allow-empty", "-m", f"bench {n}"],
            check=True,
            env={"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
                 "GIT_COMMITTER_EMAIL": "b@x", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        samples += timed(lambda: moving.for_directory(root), 1)
    show("head moved (rev-parse + status)", samples)


def report(root: Path, history: list[tuple[str, int]], work: Path) -> None:
    ledger = ScriptedLedger(work / "ledger.db", history[0][0])
    calls = 0
    for n in range(1, len(history)):
        if n % 10 == 0:
            parent, t = history[n - 1]
            ledger.call(datetime.fromtimestamp(t, UTC) + timedelta(minutes=5), "0.10", parent)
            calls += 1
    cache = work / "cache"
    for label in ("first report (git log, diff-tree, blame)", "second report (cached)"):
        conn = sqlite3.connect(ledger.path)
        t = time.perf_counter()
        found = repository_report(conn, root, weeks=4, purposes=("fix",), cache_dir=cache)
        took = time.perf_counter() - t
        conn.close()
        r = found.report
        print(
            f"{label:<42} {took:7.2f} s  ({calls} calls, {r.ai_commits} AI commits, "
            f"{len(r.rework)} top rework, {r.rewritten_lines}/{r.ai_lines} lines)"
        )


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        history = generate(work / "repo", args.commits, args.files)
        took = time.perf_counter() - t
        print(f"generated {len(history)} commits on {args.files} files in {took:.1f} s")
        report(work / "repo", history, work)
        per_call(work / "repo", args.rounds)


if __name__ == "__main__":
    main()
