"""The sans-io parts of process attribution, and the /proc walkers on a fake /proc."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

from tollhouse.attribution.process import (
    DirectoryProject,
    ProcessAttribution,
    attribute_pid,
    env_project,
    find_pid,
    find_socket_inode,
    find_socket_owner,
    normalize_host,
    parse_environ,
    parse_sock_diag_reply,
    proc_net_forms,
    process_name,
    project_for_directory,
    sock_diag_request,
)

# Rows as Linux prints them on x86: 127.0.0.1:50000 -> 127.0.0.1:8080 (inode 555), its
# accepted twin 8080 -> 50000 (inode 556), a listener, and a TIME_WAIT row (inode 0).
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 554 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 555 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 556 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C351 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
"""  # noqa: E501

# [::1]:50000 -> [::1]:8080 (inode 777) and an IPv4-mapped pair, [::ffff:127.0.0.1]:40000 ->
# [::ffff:127.0.0.1]:8080 (inode 888): an IPv6 client socket connected to a mapped address.
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:C350 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 888 1 0000000000000000 20 4 30 10 -1
"""  # noqa: E501

little_endian_host = pytest.mark.skipif(
    sys.byteorder != "little", reason="the fake /proc/net tables are in x86 byte order"
)


# -- /proc/net/tcp ------------------------------------------------------------------------------


def test_proc_net_forms_ipv4() -> None:
    assert proc_net_forms(("127.0.0.1", 8080), "little") == {
        4: "0100007F:1F90",
        6: "0000000000000000FFFF00000100007F:1F90",
    }


def test_proc_net_forms_byte_order_is_per_word() -> None:
    assert proc_net_forms(("10.1.2.3", 1), "little")[4] == "0302010A:0001"
    assert proc_net_forms(("10.1.2.3", 1), "big")[4] == "0A010203:0001"
    assert proc_net_forms(("2001:db8::1", 443), "little") == {
        6: "B80D0120000000000000000001000000:01BB"
    }


def test_proc_net_forms_mapped_is_ipv4() -> None:
    assert proc_net_forms(("::ffff:127.0.0.1", 80), "little") == proc_net_forms(
        ("127.0.0.1", 80), "little"
    )


def test_normalize_host() -> None:
    assert str(normalize_host("::ffff:127.0.0.1")) == "127.0.0.1"
    assert str(normalize_host("fe80::1%lo")) == "fe80::1"
    assert normalize_host("::1").is_loopback
    with pytest.raises(ValueError):
        normalize_host("localhost")


def test_find_socket_inode_ipv4() -> None:
    assert (
        find_socket_inode(TCP, ("127.0.0.1", 50000), ("127.0.0.1", 8080), byteorder="little") == 555
    )


def test_find_socket_inode_is_directional() -> None:
    # The server's own accepted socket is the same pair reversed.
    assert (
        find_socket_inode(TCP, ("127.0.0.1", 8080), ("127.0.0.1", 50000), byteorder="little") == 556
    )


def test_find_socket_inode_accepts_mapped_names_for_ipv4_rows() -> None:
    # A dual-stack server sees its IPv4 client as ::ffff:127.0.0.1.
    found = find_socket_inode(
        TCP, ("::ffff:127.0.0.1", 50000), ("::ffff:127.0.0.1", 8080), byteorder="little"
    )
    assert found == 555


def test_find_socket_inode_ipv6() -> None:
    assert find_socket_inode(TCP6, ("::1", 50000), ("::1", 8080), byteorder="little") == 777


def test_find_socket_inode_mapped_row_in_tcp6() -> None:
    found = find_socket_inode(TCP6, ("127.0.0.1", 40000), ("127.0.0.1", 8080), byteorder="little")
    assert found == 888


def test_find_socket_inode_skips_rows_without_inode_and_misses() -> None:
    assert (
        find_socket_inode(TCP, ("127.0.0.1", 50001), ("127.0.0.1", 8080), byteorder="little")
        is None
    )
    assert (
        find_socket_inode(TCP, ("127.0.0.1", 50000), ("127.0.0.1", 8081), byteorder="little")
        is None
    )
    assert find_socket_inode(TCP, ("::1", 50000), ("::1", 8080), byteorder="little") is None


def test_find_socket_inode_tolerates_garbage() -> None:
    assert find_socket_inode("", ("127.0.0.1", 1), ("127.0.0.1", 2)) is None
    assert find_socket_inode("nonsense\n1: x y\n", ("127.0.0.1", 1), ("127.0.0.1", 2)) is None
    assert find_socket_inode(TCP, ("not-an-ip", 1), ("127.0.0.1", 2)) is None
    assert find_socket_inode(TCP, ("127.0.0.1", 70000), ("127.0.0.1", 2)) is None


# -- sock_diag netlink --------------------------------------------------------------------------


def test_sock_diag_request_ipv4() -> None:
    request = sock_diag_request(("127.0.0.1", 50000), ("127.0.0.1", 8080), seq=7)
    assert request is not None
    header = struct.pack("=IHHII", 72, 20, 1, 7, 0)  # SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST
    body = struct.pack("=BBBxI", 2, 6, 0, 0xFFFFFFFF)  # AF_INET, IPPROTO_TCP, every state
    ports = bytes.fromhex("C350 1F90")  # big-endian, unlike /proc/net/tcp
    addresses = bytes.fromhex("7F000001") + bytes(12) + bytes.fromhex("7F000001") + bytes(12)
    tail = struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)  # any interface, no cookie
    assert request == header + body + ports + addresses + tail


def test_sock_diag_request_asks_about_mapped_ends_as_ipv4() -> None:
    mapped = sock_diag_request(("::ffff:127.0.0.1", 50000), ("::ffff:127.0.0.1", 8080))
    assert mapped == sock_diag_request(("127.0.0.1", 50000), ("127.0.0.1", 8080))


def test_sock_diag_request_ipv6() -> None:
    request = sock_diag_request(("::1", 50000), ("::1", 8080))
    assert request is not None
    assert request[16] == 10  # AF_INET6
    assert request[28:44] == bytes(15) + b"\x01"  # the source address, ::1


def test_sock_diag_request_refuses_nonsense() -> None:
    assert sock_diag_request(("127.0.0.1", 1), ("::1", 2)) is None
    assert sock_diag_request(("127.0.0.1", 70000), ("127.0.0.1", 2)) is None
    assert sock_diag_request(("localhost", 1), ("127.0.0.1", 2)) is None


def diag_reply(inode: int) -> bytes:
    message = (
        struct.pack("=BBBB", 2, 1, 0, 0) + bytes(48) + struct.pack("=5I", 0, 0, 0, 1000, inode)
    )
    return struct.pack("=IHHII", 16 + len(message), 20, 0, 1, 0) + message


def error_reply(errno: int) -> bytes:
    header = struct.pack("=IHHII", 36, 2, 0, 1, 0)  # NLMSG_ERROR
    return header + struct.pack("=i", -errno) + struct.pack("=IHHII", 72, 20, 1, 1, 0)


def test_parse_sock_diag_reply() -> None:
    assert parse_sock_diag_reply(diag_reply(123456)) == 123456
    assert parse_sock_diag_reply(diag_reply(0)) == 0  # TIME_WAIT: nobody holds it


def test_parse_sock_diag_reply_errors() -> None:
    # ENOENT: no such socket, or no tcp_diag module to ask. Either way, ask /proc instead.
    assert parse_sock_diag_reply(error_reply(2)) is None
    assert parse_sock_diag_reply(error_reply(1)) is None  # EPERM
    assert parse_sock_diag_reply(b"") is None
    assert parse_sock_diag_reply(diag_reply(5)[:40]) is None
    done = struct.pack("=IHHII", 88, 3, 0, 1, 0) + bytes(72)  # NLMSG_DONE, not an answer
    assert parse_sock_diag_reply(done) is None


# -- environ ------------------------------------------------------------------------------------


def test_parse_environ() -> None:
    data = b"HOME=/root\0EMPTY=\0EQ=a=b\0noequals\0\xff=x\0"
    assert parse_environ(data) == {"HOME": "/root", "EMPTY": "", "EQ": "a=b", "\ufffd": "x"}


def test_env_project() -> None:
    assert env_project(b"A=1\0TOLLHOUSE_PROJECT=envproj\0B=2\0") == "envproj"
    assert env_project(b"TOLLHOUSE_PROJECT= spaced \0") == "spaced"


def test_env_project_absent_or_blank() -> None:
    assert env_project(b"") is None
    assert env_project(b"PATH=/bin\0") is None
    assert env_project(b"TOLLHOUSE_PROJECT=\0") is None
    assert env_project(b"TOLLHOUSE_PROJECT=  \0") is None
    assert env_project(b"MY_TOLLHOUSE_PROJECT=other\0") is None


# -- walking up from the cwd ------------------------------------------------------------------


def test_project_file_found_walking_up(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / ".tollhouse").write_text('project = "acme"\n[tags]\nteam = "x"\n')
    cwd = tmp_path / "acme" / "src" / "deep"
    cwd.mkdir(parents=True)
    found = project_for_directory(cwd)
    assert found is not None
    assert (found.project, found.how, dict(found.tags)) == ("acme", "process:file", {"team": "x"})


def test_nearest_project_file_wins(tmp_path: Path) -> None:
    (tmp_path / ".tollhouse").write_text("outer\n")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / ".tollhouse").write_text("inner\n")
    found = project_for_directory(tmp_path / "inner")
    assert found is not None and found.project == "inner"


def test_project_file_above_git_root_beats_git(tmp_path: Path) -> None:
    (tmp_path / ".tollhouse").write_text("billing\n")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    found = project_for_directory(tmp_path / "repo")
    assert found is not None and (found.project, found.how) == ("billing", "process:file")


def test_git_root_name(tmp_path: Path) -> None:
    (tmp_path / "myrepo" / ".git").mkdir(parents=True)
    cwd = tmp_path / "myrepo" / "pkg" / "sub"
    cwd.mkdir(parents=True)
    found = project_for_directory(cwd)
    assert found is not None
    assert (found.project, found.how, dict(found.tags)) == ("myrepo", "process:git", {})


def test_git_file_marks_a_worktree_root(tmp_path: Path) -> None:
    (tmp_path / "wt" / "sub").mkdir(parents=True)
    (tmp_path / "wt" / ".git").write_text("gitdir: /elsewhere/.git/worktrees/wt\n")
    found = project_for_directory(tmp_path / "wt" / "sub")
    assert found is not None and (found.project, found.how) == ("wt", "process:git")


def test_innermost_git_root_wins(tmp_path: Path) -> None:
    (tmp_path / "outer" / ".git").mkdir(parents=True)
    (tmp_path / "outer" / "vendored" / ".git").mkdir(parents=True)
    found = project_for_directory(tmp_path / "outer" / "vendored")
    assert found is not None and found.project == "vendored"


def test_useless_project_file_falls_through_to_git(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / ".tollhouse").write_text("")
    found = project_for_directory(tmp_path / "repo")
    assert found is not None and (found.project, found.how) == ("repo", "process:git")


def test_cwd_name_when_nothing_else(tmp_path: Path) -> None:
    cwd = tmp_path / "scratch"
    cwd.mkdir()
    found = project_for_directory(cwd)
    assert found is not None and (found.project, found.how) == ("scratch", "process:cwd")


def test_vanished_cwd_still_has_a_name(tmp_path: Path) -> None:
    found = project_for_directory(tmp_path / "gone")
    assert found is not None and (found.project, found.how) == ("gone", "process:cwd")


# -- a fake /proc -------------------------------------------------------------------------------


def fake_process(
    proc: Path,
    pid: int,
    *,
    sockets: tuple[int, ...] = (),
    cwd: Path | None = None,
    environ: bytes = b"",
    exe: str | None = None,
    comm: str | None = None,
    root: str = "/",
) -> Path:
    base = proc / str(pid)
    (base / "fd").mkdir(parents=True)
    os.symlink(root, base / "root")  # its filesystem: ours, unless a test says otherwise
    os.symlink("/dev/null", base / "fd" / "0")
    for n, inode in enumerate(sockets, start=3):
        os.symlink(f"socket:[{inode}]", base / "fd" / str(n))
    if cwd is not None:
        os.symlink(cwd, base / "cwd")
    if exe is not None:
        os.symlink(exe, base / "exe")
    if comm is not None:
        (base / "comm").write_text(comm + "\n")
    (base / "environ").write_bytes(environ)
    return base


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(TCP)
    (root / "net" / "tcp6").write_text(TCP6)
    (root / "self").mkdir()  # not a pid
    return root


@little_endian_host
def test_find_pid_ipv4(proc: Path) -> None:
    fake_process(proc, 10, sockets=(1, 2))
    fake_process(proc, 100, sockets=(9, 555))
    fake_process(proc, 200, sockets=(556,))  # the server holds the other end
    assert find_pid(("127.0.0.1", 50000), ("127.0.0.1", 8080), proc=proc) == 100


@little_endian_host
def test_find_pid_ipv6_and_mapped(proc: Path) -> None:
    fake_process(proc, 100, sockets=(777,))
    fake_process(proc, 101, sockets=(888,))
    fake_process(proc, 102, sockets=(555,))
    assert find_pid(("::1", 50000, 0, 0), ("::1", 8080, 0, 0), proc=proc) == 100  # type: ignore[arg-type]
    assert find_pid(("::ffff:127.0.0.1", 40000), ("::ffff:127.0.0.1", 8080), proc=proc) == 101
    assert find_pid(("::ffff:127.0.0.1", 50000), ("::ffff:127.0.0.1", 8080), proc=proc) == 102


@little_endian_host
def test_find_pid_none_when_no_process_holds_the_socket(proc: Path) -> None:
    fake_process(proc, 100, sockets=(1,))
    assert find_pid(("127.0.0.1", 50000), ("127.0.0.1", 8080), proc=proc) is None
    assert find_pid(("127.0.0.1", 1), ("127.0.0.1", 8080), proc=proc) is None


def test_find_pid_without_proc(tmp_path: Path) -> None:
    assert find_pid(("127.0.0.1", 50000), ("127.0.0.1", 8080), proc=tmp_path / "nope") is None


def test_socket_owner_prefers_other_processes_to_ourselves(proc: Path) -> None:
    fake_process(proc, os.getpid(), sockets=(555,))
    assert find_socket_owner(555, proc=proc) == os.getpid()
    fake_process(proc, 1, sockets=(555,))  # e.g. a forked child sharing the socket
    assert find_socket_owner(555, proc=proc) == 1


def test_socket_owner_tries_likely_pids_first(proc: Path) -> None:
    fake_process(proc, 100, sockets=(555,))
    fake_process(proc, 5, sockets=(555,))  # e.g. the parent of 100, sharing the socket
    assert find_socket_owner(555, proc=proc) == 100  # newest first
    assert find_socket_owner(555, proc=proc, likely=[5]) == 5
    assert find_socket_owner(555, proc=proc, likely=[9, 3]) == 100  # stale hints: scan all
    assert find_socket_owner(556, proc=proc, likely=[5]) is None


def test_socket_owner_skips_processes_that_vanished(proc: Path) -> None:
    (proc / "300").mkdir()  # exited between listing /proc and reading its fds
    os.symlink("/nonexistent", proc / "299")
    fake_process(proc, 42, sockets=(555,))
    assert find_socket_owner(555, proc=proc) == 42


def test_attribute_pid_env_beats_everything(proc: Path, tmp_path: Path) -> None:
    (tmp_path / "work" / ".git").mkdir(parents=True)
    (tmp_path / "work" / ".tollhouse").write_text("fileproj\n")
    fake_process(
        proc,
        7,
        cwd=tmp_path / "work",
        environ=b"PATH=/bin\0TOLLHOUSE_PROJECT=envproj\0",
        exe="/usr/bin/python3.11",
    )
    assert attribute_pid(7, proc=proc) == ProcessAttribution(
        "envproj", "process:env", 7, "python3.11", {}
    )


def test_attribute_pid_project_file(proc: Path, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / ".tollhouse").write_text('project = "acme"\n[tags]\nteam = "search"\n')
    fake_process(proc, 7, cwd=tmp_path / "work", exe="/usr/bin/node")
    found = attribute_pid(7, proc=proc)
    assert found is not None
    assert (found.project, found.how, found.pid, found.process_name) == (
        "acme",
        "process:file",
        7,
        "node",
    )
    assert dict(found.tags) == {"team": "search"}


def test_attribute_pid_git_and_cwd(proc: Path, tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "src").mkdir()
    (tmp_path / "plain").mkdir()
    fake_process(proc, 7, cwd=tmp_path / "repo" / "src")
    fake_process(proc, 8, cwd=tmp_path / "plain")
    assert attribute_pid(7, proc=proc) == ProcessAttribution("repo", "process:git", 7, None)
    assert attribute_pid(8, proc=proc) == ProcessAttribution("plain", "process:cwd", 8, None)


def test_attribute_pid_of_a_vanished_process(proc: Path) -> None:
    assert attribute_pid(12345, proc=proc) is None
    (proc / "12346").mkdir()  # a zombie: the directory is there, its links are not
    assert attribute_pid(12346, proc=proc) is None


def test_attribute_pid_without_cwd_still_uses_env(proc: Path) -> None:
    fake_process(proc, 7, environ=b"TOLLHOUSE_PROJECT=envproj\0")
    found = attribute_pid(7, proc=proc)
    assert found is not None and (found.project, found.how) == ("envproj", "process:env")


def test_process_name(proc: Path) -> None:
    fake_process(proc, 7, exe="/usr/lib/jvm/bin/java (deleted)", comm="java-main")
    fake_process(proc, 8, comm="kworker/0:1")
    assert process_name(7, proc=proc) == "java"
    assert process_name(8, proc=proc) == "kworker/0:1"
    assert process_name(9, proc=proc) is None


def test_a_directory_is_read_below_the_processs_own_root(tmp_path: Path) -> None:
    """In another mount namespace ``/work`` is ``/proc/<pid>/root/work``, not ours."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "work" / "src").mkdir(parents=True)
    (rootfs / "work" / ".tollhouse").write_text('project = "inside"\n')
    found = project_for_directory(Path("/work/src"), root=rootfs)
    assert found == DirectoryProject("inside", "process:file", {})


def test_attribute_pid_reads_through_the_processs_root(proc: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "srv" / "app" / ".git").mkdir(parents=True)
    fake_process(proc, 9, cwd=Path("/srv/app"), exe="/usr/bin/node", root=str(rootfs))
    found = attribute_pid(9, proc=proc)
    assert found is not None and (found.project, found.how) == ("app", "process:git")
