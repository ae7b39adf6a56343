"""A call through the running gateway from a process in a git repository records its
git context: the repository's root commit, the branch, HEAD, and the dirty flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Harness
from tests.interest.scripted import TEN, ScriptedRepo, day

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="process attribution reads Linux's /proc"
)

# An ordinary client: no project header, no virtual key, so the process decides.
CALL = """
import json, sys, urllib.request
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
request = urllib.request.Request(
    sys.argv[1] + "/v1/chat/completions", data=body.encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer not-a-virtual-key"},
)
print(json.load(urllib.request.urlopen(request, timeout=30))["id"])
"""


def call_from(cwd: Path, gateway: Harness) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TOLLHOUSE_PROJECT"}
    done = subprocess.run(
        [sys.executable, "-c", CALL, gateway.url],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_a_call_from_a_git_repository_records_its_git_context(
    gateway: Harness, tmp_path: Path
) -> None:
    repo = ScriptedRepo(tmp_path / "shop")
    repo.commit(day(0), "start", {"a.py": TEN})
    repo.git("checkout", "-q", "-b", "topic")
    head = repo.commit(day(1), "more", {"b.py": ["b\n"]})
    (repo.root / "a.py").write_text("edited, not committed\n")
    (repo.root / "pkg").mkdir()
    upstream_id = call_from(repo.root / "pkg", gateway)
    [row] = [r for r in gateway.rows() if r["upstream_id"] == upstream_id]
    assert (row["project"], row["attribution"]) == ("shop", "process:git")
    assert (row["git_repo"], row["git_branch"], row["git_head"], row["git_dirty"]) == (
        repo.root_commit(),
        "topic",
        head,
        1,
    )
    assert json.loads(row["tags"]) == {}  # the context is in its columns, not in tags


def test_a_call_from_outside_git_records_none(gateway: Harness, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    upstream_id = call_from(plain, gateway)
    [row] = [r for r in gateway.rows() if r["upstream_id"] == upstream_id]
    assert row["attribution"] == "process:cwd"
    assert (row["git_repo"], row["git_branch"], row["git_head"], row["git_dirty"]) == (
        None,
        None,
        None,
        None,
    )
