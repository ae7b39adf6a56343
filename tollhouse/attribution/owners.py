"""Which process sent a request on a socket: the socket's holders, and among them the sender.

A socket inode can be held by several processes at once: a child forked after
its parent connected inherits the connection and may send on it. The holders
are found by reading ``/proc/<pid>/fd`` links, and the sender among them is
told apart by what each is doing right now (``/proc/<pid>/syscall``): the one
blocked reading that very socket sent the request; one waiting for a child
did not; otherwise the youngest holder did (a child that inherited a
connection uses it while its parent waits).

Nothing here is cached against a connection: every request asks again, so a
forked child, a renamed directory or a reused keep-alive connection is seen as
it is when the request arrives. What is reused is checked first:

- ``likely`` pids (recent clients, the holders of the same socket last time)
  and their descendants are read before anything else (one process's fds);
- otherwise every process's fds, newest process first, until a holder is
  found; then that holder's family (a socket is shared by inheritance).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")

# Syscall numbers (/proc/<pid>/syscall's first field) by machine: calls reading a
# socket whose first argument is the fd, and calls waiting for a child.
_READS = {
    "x86_64": frozenset({0, 19, 45, 47, 299}),  # read readv recvfrom recvmsg recvmmsg
    "aarch64": frozenset({63, 65, 207, 212, 243}),
}
_WAITS = {
    "x86_64": frozenset({61, 247}),  # wait4 waitid
    "aarch64": frozenset({260, 95}),
}


def start_time(pid: int, *, proc: Path = PROC) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    With the pid it names one process for good: a reused pid has another start time.
    """
    try:
        stat = (proc / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # the name in parentheses may hold spaces
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def socket_fds(pid: int, inode: int, *, proc: Path = PROC) -> list[int]:
    """The fd numbers under which ``pid`` holds socket ``inode`` (empty: it doesn't, or is gone)."""
    target = f"socket:[{inode}]"
    fds = []
    try:
        with os.scandir(os.path.join(proc, str(pid), "fd")) as entries:
            for entry in entries:
                try:
                    if os.readlink(entry.path) == target and entry.name.isdigit():
                        fds.append(int(entry.name))
                except OSError:  # the fd was closed while we looked
                    continue
    except OSError:  # the process is gone or isn't ours to look at
        return []
    return fds


def children(pid: int, *, proc: Path = PROC) -> list[int]:
    """The pid's child processes (every thread's ``children`` list)."""
    kids: list[int] = []
    try:
        with os.scandir(os.path.join(proc, str(pid), "task")) as tasks:
            for task in tasks:
                try:
                    with open(os.path.join(task.path, "children"), "rb") as f:
                        kids.extend(int(k) for k in f.read().split())
                except (OSError, ValueError):
                    continue
    except OSError:
        return []
    return kids


def holders_from(likely: Iterable[int], inode: int, *, proc: Path = PROC) -> list[int]:
    """The holders of ``inode`` found among ``likely`` pids and their descendants.

    Descendants are read only below a likely pid that holds the socket: they may
    have inherited it. Empty when no likely pid holds it.
    """
    found: list[int] = []
    seen: set[int] = set()
    for pid in likely:
        if pid in seen or not socket_fds(pid, inode, proc=proc):
            continue
        stack = [pid]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current == pid or socket_fds(current, inode, proc=proc):
                found.append(current)
                stack.extend(children(current, proc=proc))
    return found


def find_holders(
    inode: int, *, proc: Path = PROC, likely: Iterable[int] = (), skip: Iterable[int] = ()
) -> list[int]:
    """Every process holding socket ``inode``: the first found, then its family.

    ``likely`` pids are tried first, then every pid newest first (short-lived
    clients have the highest pids), stopping at the first holder: reading every
    process's fds is the slow part, and on a loaded machine each read waits its
    turn. A socket is shared by inheritance, so the others are among the first
    holder's ancestors and their descendants. ``skip`` pids (say, the gateway's
    own) are tried last.
    """
    first = _first_holder(inode, proc, likely, frozenset(skip))
    if first is None:
        return []
    top = first
    while True:  # up to the oldest ancestor still holding it: it opened the connection
        parent = _parent(top, proc)
        if parent is None or parent <= 1 or not socket_fds(parent, inode, proc=proc):
            break
        top = parent
    return holders_from([top], inode, proc=proc)


def _first_holder(
    inode: int, proc: Path, likely: Iterable[int], skip: frozenset[int]
) -> int | None:
    tried: set[int] = set()
    for pid in likely:
        if pid not in tried and socket_fds(pid, inode, proc=proc):
            return pid
        tried.add(pid)
    try:
        names = os.listdir(proc)
    except OSError:
        return None
    pids = sorted((int(n) for n in names if n.isdigit()), reverse=True)
    for pid in [p for p in pids if p not in skip] + [p for p in pids if p in skip]:
        if pid not in tried and socket_fds(pid, inode, proc=proc):
            return pid
    return None


def _parent(pid: int, proc: Path) -> int | None:
    try:
        stat = (proc / str(pid) / "stat").read_bytes()
        return int(stat[stat.rfind(b")") + 2 :].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def pick_sender(
    holders: list[int], inode: int, *, proc: Path = PROC, machine: str | None = None
) -> int:
    """The holder that sent the request on socket ``inode`` (see the module's docstring)."""
    if len(holders) == 1:
        return holders[0]
    arch = machine or platform.machine()
    reads, waits = _READS.get(arch, frozenset()), _WAITS.get(arch, frozenset())
    active = []
    for pid in holders:
        call = _syscall(pid, proc)
        if call is not None and call[0] in reads and call[1] in socket_fds(pid, inode, proc=proc):
            return pid
        if call is None or call[0] not in waits:
            active.append(pid)
    return max(active or holders, key=lambda pid: (start_time(pid, proc=proc) or 0, pid))


def _syscall(pid: int, proc: Path) -> tuple[int, int] | None:
    """The syscall ``pid`` is blocked in and its first argument; None if running or unreadable."""
    try:
        fields = (proc / str(pid) / "syscall").read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return int(fields[0]), int(fields[1], 16)
    except (IndexError, ValueError):  # "running", "-1 ..." (not in a syscall)
        return None
