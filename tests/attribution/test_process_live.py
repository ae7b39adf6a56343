"""Process attribution against real child processes, real sockets and the real /proc."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tollhouse.attribution import owners, process
from tollhouse.attribution.process import (
    ProcessAttribution,
    ProcessAttributor,
    attribute_pid,
    find_pid,
    proc_net_inode,
    sock_diag_inode,
)
from tollhouse.testing import BackgroundServer

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="process attribution reads Linux's /proc"
)

# Connects, says so, and holds the connection open until its stdin closes.
HOLD_CONNECTION = """
import socket, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print("connected", flush=True)
sys.stdin.read()
"""

# Two requests on one keep-alive connection, printing each response body.
TWO_REQUESTS = """
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for _ in range(2):
    conn.request("GET", "/whoami")
    print(conn.getresponse().read().decode(), flush=True)
"""


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOLLHOUSE_PROJECT"}
    return {**env, **extra}


def ipv6_loopback() -> bool:
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def holding_child(args: list[str], *, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process connected to ``args``, holding the connection until we leave."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_CONNECTION, *args],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline() == "connected\n"
        yield child  # leaving the with-block closes its stdin, and waits for it to exit


# -- find_pid across address families ----------------------------------------------------------

FAMILIES = [
    pytest.param(("127.0.0.1", socket.AF_INET, False), "127.0.0.1", id="ipv4"),
    pytest.param(("::1", socket.AF_INET6, False), "::1", id="ipv6"),
    # A dual-stack listener sees IPv4 clients as ::ffff:127.0.0.1; the client's socket
    # is IPv4 (in /proc/net/tcp) or, if it dialled the mapped address, IPv6 (tcp6).
    pytest.param(("::ffff:127.0.0.1", socket.AF_INET6, True), "127.0.0.1", id="mapped-v4-client"),
    pytest.param(
        ("::ffff:127.0.0.1", socket.AF_INET6, True), "::ffff:127.0.0.1", id="mapped-v6-client"
    ),
]


@pytest.mark.parametrize(("listen", "dial"), FAMILIES)
def test_find_pid_of_a_child_process(
    listen: tuple[str, socket.AddressFamily, bool], dial: str, tmp_path: Path
) -> None:
    host, family, dualstack = listen
    if family == socket.AF_INET6 and not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    with socket.create_server((host, 0), family=family, dualstack_ipv6=dualstack) as listener:
        listener.settimeout(60)  # a safety net for a broken child, not a timing assertion
        port = listener.getsockname()[1]
        with holding_child([dial, str(port)], cwd=tmp_path) as child:
            conn, _ = listener.accept()
            with conn:
                assert find_pid(conn.getpeername(), conn.getsockname()) == child.pid


@pytest.mark.parametrize(("listen", "dial"), FAMILIES)
def test_kernel_and_proc_net_agree_on_the_inode(
    listen: tuple[str, socket.AddressFamily, bool], dial: str
) -> None:
    host, family, dualstack = listen
    if family == socket.AF_INET6 and not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    with socket.create_server((host, 0), family=family, dualstack_ipv6=dualstack) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection((dial, port)) as client:
            conn, _ = listener.accept()
            with conn:
                peer, local = conn.getpeername()[:2], conn.getsockname()[:2]
                inode = os.fstat(client.fileno()).st_ino
                assert proc_net_inode(peer, local) == inode
                if sock_diag_inode(peer, local) is not None:  # None: netlink sandboxed away
                    assert sock_diag_inode(peer, local) == inode


def test_no_inode_for_a_connection_that_does_not_exist() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        local = listener.getsockname()
        assert proc_net_inode(("127.0.0.1", 1), local) is None
        assert sock_diag_inode(("127.0.0.1", 1), local) is None


def test_find_pid_without_netlink_reads_proc_net(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "sock_diag_inode", lambda local, remote: None)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(60)
        with holding_child(["127.0.0.1", str(listener.getsockname()[1])], cwd=tmp_path) as child:
            conn, _ = listener.accept()
            with conn:
                assert find_pid(conn.getpeername(), conn.getsockname()) == child.pid


def test_find_pid_is_none_once_the_client_has_gone(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(60)
        with holding_child(["127.0.0.1", str(listener.getsockname()[1])], cwd=tmp_path):
            conn, _ = listener.accept()
        with conn:  # the child has exited: its socket has no owner any more
            assert find_pid(conn.getpeername(), conn.getsockname()) is None


def test_a_client_gone_before_its_lookup_is_a_failed_lookup(tmp_path: Path) -> None:
    """Recorded as process:failed with the reason, never as if nothing were there."""

    async def main(peer: Any, local: Any) -> Any:
        attributor = ProcessAttributor()
        try:
            return await attributor.resolve(attributor.start_for(peer, local), timeout=60)
        finally:
            attributor.close()

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(60)
        with holding_child(["127.0.0.1", str(listener.getsockname()[1])], cwd=tmp_path):
            conn, _ = listener.accept()
        with conn:  # the child has exited: its socket has no owner any more
            found = asyncio.run(main(conn.getpeername(), conn.getsockname()))
    assert found == process.failed("socket closed")
    assert (found.project, found.how) == ("unattributed", "process:failed")


def test_a_forked_child_on_its_parents_connection_is_told_apart(tmp_path: Path) -> None:
    """Both hold the socket; the parent waits for the child, the child reads it."""
    script = """
import os, socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
child = os.fork()
if child == 0:
    os.chdir(sys.argv[2])
    conn.sendall(b"x")
    conn.recv(1)  # blocked reading the shared socket: the sender
    os._exit(0)
os.waitpid(child, 0)
"""
    (tmp_path / "kid").mkdir()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(60)
        port = str(listener.getsockname()[1])
        with subprocess.Popen(
            [sys.executable, "-c", script, port, str(tmp_path / "kid")], cwd=tmp_path
        ) as parent:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(60)
                assert conn.recv(1) == b"x"
                inode = sock_diag_inode(conn.getpeername(), conn.getsockname())
                inode = inode or proc_net_inode(conn.getpeername(), conn.getsockname())
                assert inode
                holders = owners.holders_from([parent.pid], inode)
                kids = [pid for pid in holders if pid != parent.pid]
                assert holders[0] == parent.pid and len(kids) == 1
                wait_until_blocked(kids[0])
                wait_until_blocked(parent.pid)
                assert owners.pick_sender(holders, inode) == kids[0]
                assert attribute_pid(kids[0]) == ProcessAttribution(
                    "kid",
                    "process:cwd",
                    kids[0],
                    os.path.basename(os.path.realpath(sys.executable)),
                )
                conn.sendall(b"y")


def wait_until_blocked(pid: int) -> None:
    """Until ``pid`` sits in a syscall (not a timing assertion: a bounded wait for a state)."""
    for _ in range(6000):
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        if fields and fields[0].isdigit() and Path(f"/proc/{pid}/wchan").read_text() != "0":
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} never blocked")


def test_attribute_pid_names_the_executable(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(60)
        with holding_child(["127.0.0.1", str(listener.getsockname()[1])], cwd=tmp_path) as child:
            found = attribute_pid(child.pid)
    assert found is not None
    assert found.process_name == os.path.basename(os.path.realpath(sys.executable))
    assert (found.project, found.how, found.pid) == (tmp_path.name, "process:cwd", child.pid)


# -- the whole path, through aiohttp as the gateway uses it -----------------------------------


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.lookups = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.lookups += 1
        return super().submit(fn, *args, **kwargs)


ATTRIBUTOR = web.AppKey("attributor", ProcessAttributor)


async def whoami(request: web.Request) -> web.Response:
    attributor = request.app[ATTRIBUTOR]
    # A generous cap: this test checks what is found, not how fast.
    found = await attributor.resolve(attributor.start(request.transport), timeout=60)
    if found is None:
        return web.json_response(None)
    return web.json_response(
        {
            "project": found.project,
            "how": found.how,
            "pid": found.pid,
            "process_name": found.process_name,
            "tags": dict(found.tags),
        }
    )


@pytest.fixture
def gateway() -> Iterator[tuple[BackgroundServer, CountingExecutor]]:
    executor = CountingExecutor()

    def make_app() -> web.Application:
        app = web.Application()
        app[ATTRIBUTOR] = ProcessAttributor(executor=executor)
        app.router.add_get("/whoami", whoami)
        return app

    with BackgroundServer(make_app) as server:
        yield server, executor
    executor.shutdown()


def ask_whoami(port: int, *, cwd: Path, env: dict[str, str]) -> tuple[int, list[Any]]:
    child = subprocess.Popen(
        [sys.executable, "-c", TWO_REQUESTS, str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    return child.pid, [json.loads(line) for line in out.splitlines()]


def test_project_file(gateway: tuple[BackgroundServer, CountingExecutor], tmp_path: Path) -> None:
    server, executor = gateway
    (tmp_path / ".tollhouse").write_text('project = "acme"\n[tags]\nteam = "search"\n')
    (tmp_path / "src").mkdir()
    pid, answers = ask_whoami(server.port, cwd=tmp_path / "src", env=child_env())
    expected = {
        "project": "acme",
        "how": "process:file",
        "pid": pid,
        "process_name": os.path.basename(os.path.realpath(sys.executable)),
        "tags": {"team": "search"},
    }
    assert answers == [expected, expected]
    assert executor.lookups == 2  # every request is looked up afresh, keep-alive or not


def test_env_beats_project_file(
    gateway: tuple[BackgroundServer, CountingExecutor], tmp_path: Path
) -> None:
    server, _ = gateway
    (tmp_path / ".tollhouse").write_text('project = "acme"\n')
    env = child_env(TOLLHOUSE_PROJECT="envproj")
    pid, answers = ask_whoami(server.port, cwd=tmp_path, env=env)
    assert [(a["project"], a["how"], a["pid"]) for a in answers] == [
        ("envproj", "process:env", pid)
    ] * 2


def test_git_repository_root(
    gateway: tuple[BackgroundServer, CountingExecutor], tmp_path: Path
) -> None:
    server, _ = gateway
    repo = tmp_path / "widget-repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pkg" / "deep").mkdir(parents=True)
    pid, answers = ask_whoami(server.port, cwd=repo / "pkg" / "deep", env=child_env())
    assert [(a["project"], a["how"], a["pid"]) for a in answers] == [
        ("widget-repo", "process:git", pid)
    ] * 2


def test_plain_directory(
    gateway: tuple[BackgroundServer, CountingExecutor], tmp_path: Path
) -> None:
    server, _ = gateway
    cwd = tmp_path / "scratchpad"
    cwd.mkdir()
    pid, answers = ask_whoami(server.port, cwd=cwd, env=child_env())
    assert [(a["project"], a["how"], a["pid"], a["tags"]) for a in answers] == [
        ("scratchpad", "process:cwd", pid, {})
    ] * 2
