"""Git repositories with scripted histories (times set through GIT_*_DATE), and a
ledger whose calls carry git context, for the interest tests."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tollhouse.ledger.migrations import migrate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TEN = [f"line {i}\n" for i in range(1, 11)]


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class ScriptedRepo:
    """``git`` in a fresh repository, every commit at a time the script chooses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.when = T0
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        stamp = f"@{int(self.when.timestamp())} +0000"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "dev",
            "GIT_AUTHOR_EMAIL": "dev@example.com",
            "GIT_COMMITTER_NAME": "dev",
            "GIT_COMMITTER_EMAIL": "dev@example.com",
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        done = subprocess.run(
            ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def write(self, name: str, lines: list[str]) -> None:
        (self.root / name).write_text("".join(lines))

    def commit(
        self, when: datetime, message: str, files: dict[str, list[str]] | None = None
    ) -> str:
        self.when = when
        for name, lines in (files or {}).items():
            self.write(name, lines)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def root_commit(self) -> str:
        return self.git("rev-list", "--max-parents=0", "HEAD")


class ScriptedLedger:
    """A migrated SQLite ledger; each call a row with its cost and git context."""

    def __init__(self, path: Path, repo: str) -> None:
        self.path, self.repo, self.n = path, repo, 0
        conn = sqlite3.connect(path)
        migrate(conn)
        conn.close()

    def call(
        self,
        when: datetime,
        cost: str,
        head: str,
        branch: str | None = "main",
        *,
        project: str = "acme",
        purpose: str | None = None,
        repo: str | None = None,
    ) -> None:
        self.n += 1
        tags = json.dumps({"purpose": purpose} if purpose else {})
        conn = sqlite3.connect(self.path)
        with conn:
            conn.execute(
                "INSERT INTO requests (ts, request_id, project, attribution, tags, dialect, "
                "status, stream, incomplete, cost_usd, price_source, latency_ms, "
                "git_repo, git_branch, git_head, git_dirty) "
                "VALUES (?, ?, ?, 'process:git', ?, 'openai-chat', 200, 0, 0, ?, 'provider', "
                "1.0, ?, ?, ?, 1)",
                (
                    when.isoformat(),
                    f"r{self.n}",
                    project,
                    tags,
                    str(Decimal(cost)),
                    repo or self.repo,
                    branch,
                    head,
                ),
            )
        conn.close()
