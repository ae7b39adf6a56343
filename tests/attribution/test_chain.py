"""Each step of the attribution chain, end to end through the gateway."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ACME_KEY, Harness
from tests.test_metering_e2e import oa
from tollhouse.simulator import Simulator

CHILD = textwrap.dedent(
    """
    import sys, openai
    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-child-own-key", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "from a child"}])
    print(raw.headers["x-tollhouse-request-id"])
    """
)


def test_a_virtual_key_decides_who_pays_and_the_header_only_labels(gateway: Harness) -> None:
    client = oa(gateway, default_headers={"X-Tollhouse-Project": "globex"})
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    row = gateway.row(raw.headers["x-tollhouse-request-id"])
    assert (row["project"], row["attribution"]) == ("acme", "key")
    assert json.loads(row["tags"]) == {"project_header": "globex"}


def test_without_a_virtual_key_the_header_decides(gateway: Harness) -> None:
    client = oa(gateway, key="sk-own-provider-key", default_headers={"X-Tollhouse-Project": "g"})
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    row = gateway.row(raw.headers["x-tollhouse-request-id"])
    assert (row["project"], row["attribution"]) == ("g", "header")
    assert json.loads(row["tags"]) == {}


def test_virtual_key(gateway: Harness) -> None:
    raw = oa(gateway, key=ACME_KEY).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    row = gateway.row(raw.headers["x-tollhouse-request-id"])
    assert (row["project"], row["attribution"]) == ("acme", "key")


def test_tags_are_recorded_and_not_forwarded(gateway: Harness, simulator: Simulator) -> None:
    headers = {"X-Tollhouse-Tag-Purpose": "bugfix", "X-Tollhouse-Tag-Ticket": "T-42"}
    raw = oa(gateway, default_headers=headers).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    row = gateway.row(raw.headers["x-tollhouse-request-id"])
    assert json.loads(row["tags"]) == {"purpose": "bugfix", "ticket": "T-42"}
    bill = next(b for b in simulator.bills() if b["id"] == row["upstream_id"])
    assert bill["saw_tollhouse_headers"] is False


def run_child(gateway: Harness, cwd: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    import os

    child_env = {k: v for k, v in os.environ.items() if k != "TOLLHOUSE_PROJECT"}
    child_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", CHILD, gateway.url],
        cwd=cwd,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return gateway.row(out.stdout.strip())


def test_process_tollhouse_file(gateway: Harness, tmp_path: Path) -> None:
    (tmp_path / ".tollhouse").write_text('project = "childproj"\n')
    work = tmp_path / "src" / "deep"
    work.mkdir(parents=True)
    row = run_child(gateway, work)
    assert (row["project"], row["attribution"]) == ("childproj", "process:file")
    assert row["process_name"]


def test_process_env_beats_file(gateway: Harness, tmp_path: Path) -> None:
    (tmp_path / ".tollhouse").write_text('project = "fileproj"\n')
    row = run_child(gateway, tmp_path, {"TOLLHOUSE_PROJECT": "envproj"})
    assert (row["project"], row["attribution"]) == ("envproj", "process:env")


def test_process_git_root(gateway: Harness, tmp_path: Path) -> None:
    repo = tmp_path / "billing-service"
    (repo / ".git").mkdir(parents=True)
    (repo / "pkg").mkdir()
    row = run_child(gateway, repo / "pkg")
    assert (row["project"], row["attribution"]) == ("billing-service", "process:git")


def test_process_cwd_name(gateway: Harness, tmp_path: Path) -> None:
    plain = tmp_path / "scratchpad"
    plain.mkdir()
    row = run_child(gateway, plain)
    assert (row["project"], row["attribution"]) == ("scratchpad", "process:cwd")
