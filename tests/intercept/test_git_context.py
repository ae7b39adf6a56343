"""A coding tool's call under `tollhouse run` records the git context of its directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.intercept.conftest import TOLLHOUSE, Interceptor, StandIns
from tests.interest.scripted import TEN, ScriptedRepo, day

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="process attribution reads Linux's /proc"
)


def test_curl_in_a_repository(
    interceptor: Interceptor, stand_ins: StandIns, tmp_path: Path
) -> None:
    repo = ScriptedRepo(tmp_path / "tool")
    head = repo.commit(day(0), "start", {"a.py": TEN})
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "from git"}]}
    result = subprocess.run(
        [
            *TOLLHOUSE, "run", "--config", str(interceptor.config),
            "--port", str(interceptor.port), "--",
            "curl", "-sS", "--fail", "-H", "Authorization: Bearer sk-curl",
            "-H", "Content-Type: application/json", "-d", json.dumps(body),
            "https://api.openai.com/v1/chat/completions",
        ],
        cwd=repo.root,
        env=interceptor.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [row] = interceptor.rows()
    assert row["attribution"].startswith("process:")
    assert (row["git_repo"], row["git_branch"], row["git_head"], row["git_dirty"]) == (
        repo.root_commit(),
        "main",
        head,
        0,
    )
