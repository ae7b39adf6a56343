"""owners: a socket's holders and the sender among them, against a fake /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tollhouse.attribution import owners


def fake(
    proc: Path,
    pid: int,
    *,
    sockets: dict[int, int] | None = None,  # fd -> inode
    syscall: str = "running",
    started: int = 100,
    kids: tuple[int, ...] = (),
    parent: int = 1,
) -> None:
    base = proc / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "task" / str(pid)).mkdir(parents=True)
    for fd, inode in (sockets or {}).items():
        os.symlink(f"socket:[{inode}]", base / "fd" / str(fd))
    os.symlink("/dev/null", base / "fd" / "0")
    (base / "syscall").write_text(syscall + "\n")
    fields = ["S", str(parent), *["0"] * 17, str(started), "0"]  # field 22 is the start time
    (base / "stat").write_text(f"{pid} (a (odd) name) " + " ".join(fields) + "\n")
    (base / "task" / str(pid) / "children").write_text(" ".join(map(str, kids)))


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    return tmp_path / "proc"


def test_start_time_survives_a_name_with_parentheses(proc: Path) -> None:
    fake(proc, 5, started=987654)
    assert owners.start_time(5, proc=proc) == 987654
    assert owners.start_time(6, proc=proc) is None


def test_holders_from_a_likely_pid_and_its_descendants(proc: Path) -> None:
    fake(proc, 10, sockets={3: 77}, kids=(11, 12))
    fake(proc, 11, sockets={3: 77}, kids=(13,))
    fake(proc, 12)  # closed its copy
    fake(proc, 13, sockets={5: 77})
    fake(proc, 20, sockets={3: 77})  # not a descendant: not looked at here
    assert sorted(owners.holders_from([10], 77, proc=proc)) == [10, 11, 13]
    assert owners.holders_from([12], 77, proc=proc) == []


def test_find_holders_finds_the_first_then_its_family(proc: Path) -> None:
    fake(proc, 10, sockets={3: 77}, kids=(30,))  # opened it
    fake(proc, 30, sockets={4: 77}, kids=(31,), parent=10)
    fake(proc, 31, sockets={3: 77}, parent=30)
    fake(proc, 40, sockets={3: 99})
    # Newest first: 31 is found first; its ancestors holding it lead up to 10.
    assert sorted(owners.find_holders(77, proc=proc)) == [10, 30, 31]
    assert owners.find_holders(99, proc=proc) == [40]
    assert owners.find_holders(12345, proc=proc) == []


def test_find_holders_tries_likely_first_and_skipped_last(proc: Path) -> None:
    fake(proc, 10, sockets={3: 77})
    fake(proc, 50, sockets={3: 77})  # an unrelated holder (passed over a unix socket)
    assert owners.find_holders(77, proc=proc) == [50]
    assert owners.find_holders(77, proc=proc, likely=[10]) == [10]
    assert owners.find_holders(77, proc=proc, skip=[50]) == [10]


X86_RECVFROM_FD3 = "45 0x3 0x7ffd 0x2000 0x0 0x0 0x0 0x7ffd 0x7f00"
X86_WAIT4 = "61 0xffffffffffffffff 0x7ffd 0x0 0x0 0x0 0x0 0x7ffd 0x7f00"
X86_POLL = "7 0x7ffd1000 0x1 0x3e8 0x0 0x0 0x0 0x7ffd 0x7f00"


def test_the_holder_reading_the_socket_sent_it(proc: Path) -> None:
    fake(proc, 10, sockets={3: 77}, syscall=X86_RECVFROM_FD3, started=1)  # the parent reads
    fake(proc, 11, sockets={3: 77}, syscall=X86_POLL, started=2)
    assert owners.pick_sender([10, 11], 77, proc=proc, machine="x86_64") == 10


def test_reading_another_fd_does_not_count(proc: Path) -> None:
    fake(proc, 10, sockets={4: 77}, syscall=X86_RECVFROM_FD3, started=1)  # fd 3 is not it
    fake(proc, 11, sockets={3: 77}, syscall=X86_POLL, started=2)
    assert owners.pick_sender([10, 11], 77, proc=proc, machine="x86_64") == 11


def test_a_holder_waiting_for_its_child_did_not_send(proc: Path) -> None:
    fake(proc, 10, sockets={3: 77}, syscall=X86_POLL, started=5)
    fake(proc, 11, sockets={3: 77}, syscall=X86_WAIT4, started=9)  # youngest, but waiting
    assert owners.pick_sender([10, 11], 77, proc=proc, machine="x86_64") == 10


def test_otherwise_the_youngest_holder(proc: Path) -> None:
    fake(proc, 10, sockets={3: 77}, syscall=X86_POLL, started=5)
    fake(proc, 11, sockets={3: 77}, syscall="running", started=9)
    assert owners.pick_sender([11, 10], 77, proc=proc, machine="x86_64") == 11
    assert owners.pick_sender([10], 77, proc=proc, machine="x86_64") == 10
