"""Dozens of short-lived client processes at once, each row attributed to the right project.

The mix the attribution was probed with (issue 22): git repositories, nested
ones, worktrees, ``.tollhouse`` files, ``TOLLHOUSE_PROJECT``, plain directories,
one-shot scripts, a forked child sending on its parent's connection, a directory
renamed between two requests on one connection, and processes in another mount
namespace (``unshare -m``) whose working directory exists only there. Every row's
project and attribution method must be right, every run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import GatewayFactory

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="process attribution reads Linux's /proc"
)

CLIENT = str(Path(__file__).with_name("mix_client.py"))
Expected = tuple[str, str]  # project, attribution


@dataclass
class Client:
    cwd: Path
    expected: dict[str, Expected]  # tag the client prints -> the row it must get
    mode: str = "once"
    arg: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    wrap: list[str] = field(default_factory=list)  # e.g. unshare, around the client

    def argv(self, port: int) -> list[str]:
        tail = [self.arg] if self.arg is not None else []
        command = [sys.executable, CLIENT, str(port), self.mode, *tail]
        return [*self.wrap, *command] if self.wrap else command


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOLLHOUSE_PROJECT"}
    root = str(Path(__file__).parents[2])
    return {**env, "PYTHONPATH": root, **extra}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git("init", "-q", cwd=path)
    return path


def can_unshare() -> str | None:
    """Why a mount namespace can't be made here, or None if it can."""
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    done = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"unshare -m failed: {done.stderr.strip()}"


def require_unshare() -> None:
    why = can_unshare()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must run the mount-namespace attribution tests (as root)")
    pytest.skip(why)


def in_namespace(script: str) -> list[str]:
    """Runs ``script`` (then the client, as "$@") in a new, private mount namespace."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-ec", script, "ns"]


Builder = Callable[[Path, int], list[Client]]


def git_repos(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        top = repo(tmp / f"gitrepo-{i}")
        (top / "src" / "pkg").mkdir(parents=True)
        out.append(Client(top / "src" / "pkg", {"main": (f"gitrepo-{i}", "process:git")}))
    return out


def project_files(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        top = tmp / f"filed-{i}"
        (top / "deep" / "er").mkdir(parents=True)
        (top / ".tollhouse").write_text(f'project = "client-{i}"\n')
        out.append(Client(top / "deep" / "er", {"main": (f"client-{i}", "process:file")}))
    return out


def env_projects(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        top = repo(tmp / f"envrepo-{i}")  # the environment beats the repository
        env = {"TOLLHOUSE_PROJECT": f"from-env-{i}"}
        out.append(Client(top, {"main": (f"from-env-{i}", "process:env")}, env=env))
    return out


def nested(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        inner = repo(repo(tmp / f"outer-{i}") / "vendor" / f"inner-{i}")
        (inner / "lib").mkdir()
        out.append(Client(inner / "lib", {"main": (f"inner-{i}", "process:git")}))
        # A .tollhouse above a nested repository still wins: it's looked for up to /.
        filed = tmp / f"filed-outer-{i}"
        filed.mkdir()
        (filed / ".tollhouse").write_text(f'project = "billed-{i}"\n')
        below = repo(filed / f"nested-{i}")
        out.append(Client(below, {"main": (f"billed-{i}", "process:file")}))
    return out


def worktrees(tmp: Path, n: int) -> list[Client]:
    main = repo(tmp / "wt-main")
    git("commit", "-q", "--allow-empty", "-m", "start", cwd=main)
    out = []
    for i in range(n):
        tree = tmp / f"wt-feature-{i}"
        git("worktree", "add", "-q", "-b", f"feature-{i}", str(tree), cwd=main)
        (tree / "sub").mkdir()
        out.append(Client(tree / "sub", {"main": (f"wt-feature-{i}", "process:git")}))
    return out


def plain(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        (tmp / f"scratch-{i}").mkdir()
        out.append(Client(tmp / f"scratch-{i}", {"main": (f"scratch-{i}", "process:cwd")}))
    return out


def forks(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        parent = repo(tmp / f"parent-{i}")
        child = repo(tmp / f"child-{i}")
        expected = {"main": (f"parent-{i}", "process:git"), "child": (f"child-{i}", "process:git")}
        out.append(Client(parent, expected, mode="fork", arg=str(child)))
    return out


def renames(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        before = tmp / f"before-{i}"
        before.mkdir()
        expected = {
            "main": (f"before-{i}", "process:cwd"),
            "renamed": (f"after-{i}", "process:cwd"),
        }
        out.append(Client(before, expected, mode="rename", arg=str(tmp / f"after-{i}")))
    return out


def openai_sdk(tmp: Path, n: int) -> list[Client]:
    out = []
    for i in range(n):
        (tmp / f"sdk-{i}" / ".git").mkdir(parents=True)
        out.append(Client(tmp / f"sdk-{i}", {"main": (f"sdk-{i}", "process:git")}))
        out[-1].mode = "openai"
    return out


def namespaces(tmp: Path, n: int) -> list[Client]:
    """Working directories that exist only inside another mount namespace.

    A tmpfs hides the host's ``.tollhouse`` under the same path; a bind mount shows
    another directory's. Seen from the gateway's filesystem both would be wrong.
    """
    out = []
    for i in range(n):
        hidden = tmp / f"ns-tmpfs-{i}"
        (hidden / "inside" / "src").mkdir(parents=True)
        (hidden / ".tollhouse").write_text('project = "host-view"\n')
        (hidden / "inside" / ".tollhouse").write_text('project = "host-view"\n')
        script = (
            f'mount -t tmpfs tollhouse-test "{hidden}"; mkdir -p "{hidden}/inside/src"; '
            f'printf \'project = "ns-tmpfs-{i}"\\n\' > "{hidden}/inside/.tollhouse"; '
            f'cd "{hidden}/inside/src"; exec "$@"'
        )
        expected = {"main": (f"ns-tmpfs-{i}", "process:file")}
        out.append(Client(tmp, expected, wrap=in_namespace(script)))
        shown, over = tmp / f"ns-bind-src-{i}", tmp / f"ns-bind-{i}"
        shown.mkdir()
        (shown / ".tollhouse").write_text(f'project = "ns-bind-{i}"\n')
        over.mkdir()
        (over / ".tollhouse").write_text('project = "host-view"\n')
        script = f'mount --bind "{shown}" "{over}"; cd "{over}"; exec "$@"'
        expected = {"main": (f"ns-bind-{i}", "process:file")}
        out.append(Client(tmp, expected, wrap=in_namespace(script)))
    return out


MIX: list[tuple[Builder, int]] = [
    (git_repos, 4),
    (project_files, 4),
    (env_projects, 4),
    (nested, 2),  # two clients each
    (worktrees, 3),
    (plain, 3),
    (forks, 3),  # two rows each
    (renames, 2),  # two rows each
    (openai_sdk, 2),
    (namespaces, 3),  # two clients each
]


def build_mix(tmp: Path) -> list[Client]:
    return [client for builder, n in MIX for client in builder(tmp / builder.__name__, n)]


def run_all(clients: list[Client], port: int) -> dict[str, tuple[str, Client]]:
    """Start every client at once; the request id of each (tag, client) printed."""
    procs = []
    for client in clients:
        env = child_env(**client.env)
        procs.append(
            subprocess.Popen(
                client.argv(port), cwd=client.cwd, env=env, stdout=subprocess.PIPE, text=True
            )
        )
    ids: dict[str, tuple[str, Client]] = {}
    for proc, client in zip(procs, clients, strict=True):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, (client, out)
        for line in out.splitlines():
            tag, request_id = line.split()
            ids[request_id] = (tag, client)
    return ids


@pytest.mark.parametrize("run", range(2))
def test_every_row_of_the_mix_is_right(
    make_gateway: GatewayFactory, tmp_path: Path, run: int
) -> None:
    require_unshare()
    for builder, _ in MIX:
        (tmp_path / builder.__name__).mkdir()
    clients = build_mix(tmp_path)
    assert len(clients) >= 35
    gateway = make_gateway()
    ids = run_all(clients, gateway.server.port)
    rows = {r["request_id"]: r for r in gateway.rows()}
    assert len(ids) == sum(len(c.expected) for c in clients) == len(rows)
    got = {rid: (rows[rid]["project"], rows[rid]["attribution"]) for rid in ids}
    wanted = {rid: client.expected[tag] for rid, (tag, client) in ids.items()}
    wrong = {
        rid: (wanted[rid], got[rid], json.loads(rows[rid]["tags"]))
        for rid in ids
        if got[rid] != wanted[rid]
    }
    assert wrong == {}
    assert got == wanted
