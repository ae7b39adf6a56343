"""Attribute a loopback connection to the local process that opened it, and to its project.

The last steps of the attribution chain, used when a request carries neither a
project header nor a virtual key. Linux only: elsewhere (or without permission
to read another user's ``/proc``) every lookup quietly yields None.

1. Connection to pid: the client's socket is the one whose local end is our
   peer and whose remote end is us. The kernel names its inode (asked through
   sock_diag netlink, else read from ``/proc/net/tcp{,6}``), and the processes
   with the socket open hold it as ``/proc/<pid>/fd/* -> socket:[inode]``.
2. Pid to project, first match wins: ``TOLLHOUSE_PROJECT`` in the process's
   environment, a ``.tollhouse`` file above its cwd, the git repository root's
   name, the cwd's name.

The parsing is sans-io (plain functions of text and bytes); the functions that
touch the filesystem take ``proc`` so tests can hand them a fake ``/proc``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import ipaddress
import logging
import os
import socket
import struct
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NamedTuple, TypeVar

from tollhouse import sane
from tollhouse.attribution import owners
from tollhouse.attribution.projectfile import PROJECT_FILE_NAME, read_project_file

logger = logging.getLogger(__name__)

PROC = Path("/proc")
ENV_VAR = "TOLLHOUSE_PROJECT"
UNATTRIBUTED = "unattributed"
FAILED = "process:failed"  # a lookup that failed or lost a race: not "nothing to attribute"
FAILED_TAG = "attribution_failed"  # the tag saying why

Endpoint = tuple[str, int]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ByteOrder = Literal["little", "big"]

_K = TypeVar("_K")
_V = TypeVar("_V")
_EMPTY_TAGS: Mapping[str, str] = MappingProxyType({})
_DELETED = " (deleted)"


@dataclass(frozen=True, slots=True)
class ProcessAttribution:
    """Which local process made a request, and the project it belongs to.

    For example ``ProcessAttribution("acme", "process:file", 4242, "python3.11",
    {"team": "search"})``: pid 4242, running python3.11, sits below a ``.tollhouse``
    file naming project acme.
    """

    project: str
    how: str  # "process:env" | "process:file" | "process:git" | "process:cwd" | "process:failed"
    pid: int
    process_name: str | None
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY_TAGS, hash=False)


class DirectoryProject(NamedTuple):
    """The project a directory belongs to, and the rule that decided it."""

    project: str
    how: str
    tags: Mapping[str, str] = _EMPTY_TAGS


# -- /proc/net/tcp: connection to socket inode (sans-io) ---------------------------------------


def normalize_host(host: str) -> IPAddress:
    """Parse a socket address host; an IPv4-mapped IPv6 address becomes the IPv4 one.

    Raises ValueError for something that isn't an IP address.
    """
    address = ipaddress.ip_address(host.partition("%")[0])  # drop an IPv6 zone: "fe80::1%lo"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _hex_words(packed: bytes, byteorder: ByteOrder) -> str:
    # The kernel prints each 32-bit word of the address as a native-endian integer.
    words = (packed[i : i + 4] for i in range(0, len(packed), 4))
    return "".join(f"{int.from_bytes(word, byteorder):08X}" for word in words)


def proc_net_forms(endpoint: Endpoint, byteorder: ByteOrder = sys.byteorder) -> dict[int, str]:
    """How ``endpoint`` is spelled in ``/proc/net/tcp`` (key 4) and ``/proc/net/tcp6`` (key 6).

    An IPv4 endpoint can appear in both: as itself, or IPv4-mapped on a dual-stack socket.

    >>> proc_net_forms(("127.0.0.1", 8080), "little")
    {4: '0100007F:1F90', 6: '0000000000000000FFFF00000100007F:1F90'}
    """
    host, port = endpoint
    address = normalize_host(host)
    forms = {}
    if isinstance(address, ipaddress.IPv4Address):
        forms[4] = f"{_hex_words(address.packed, byteorder)}:{port:04X}"
        address = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)
    forms[6] = f"{_hex_words(address.packed, byteorder)}:{port:04X}"
    return forms


def find_socket_inode(
    table: str, local: Endpoint, remote: Endpoint, *, byteorder: ByteOrder = sys.byteorder
) -> int | None:
    """The inode of the socket from ``local`` to ``remote`` in a ``/proc/net/tcp{,6}`` table.

    ``local`` and ``remote`` are as the socket's owner sees them. Rows without an
    inode (TIME_WAIT, already closed) are skipped.
    """
    try:
        wanted_local = proc_net_forms(local, byteorder)
        wanted_remote = proc_net_forms(remote, byteorder)
    except ValueError:
        return None
    # Both ends share a family: a socket is IPv4 (tcp) or IPv6 (tcp6), never half of each.
    families = wanted_local.keys() & wanted_remote.keys()
    pairs = {(wanted_local[f], wanted_remote[f]) for f in families}
    for fields in _rows(table):
        inode = fields[9]
        if (fields[1].upper(), fields[2].upper()) in pairs and inode.isdigit() and inode != "0":
            return int(inode)
    return None


def _rows(table: str) -> Iterator[list[str]]:
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 10 and fields[0] != "sl":
            yield fields


# -- sock_diag netlink: connection to socket inode, straight from the kernel -----------------
# One exact lookup costs tens of microseconds where reading /proc/net/tcp costs milliseconds.
# Layouts from linux/netlink.h and linux/inet_diag.h.

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_HEADER = "=IHHII"  # length, type, flags, seq, port id
_NLMSG_HEADER_SIZE = 16
_INET_DIAG_MSG_SIZE = 72  # family, state, timer, retrans, sockid (48), 5 x u32
_INET_DIAG_INODE_OFFSET = 68
_ALL_STATES = 0xFFFFFFFF
_NO_COOKIE = 0xFFFFFFFF


def sock_diag_request(local: Endpoint, remote: Endpoint, *, seq: int = 1) -> bytes | None:
    """A sock_diag netlink request for the one TCP socket from ``local`` to ``remote``.

    IPv4 and IPv4-mapped ends are asked about as IPv4: the kernel then finds the
    socket whether the client opened it as IPv4 or as IPv6 dialling a mapped address.
    None if the ends aren't IP addresses of one family.
    """
    try:
        src, dst = normalize_host(local[0]), normalize_host(remote[0])
        ports = struct.pack("!HH", local[1], remote[1])
    except (ValueError, struct.error):
        return None
    if src.version != dst.version:
        return None
    family = socket.AF_INET if src.version == 4 else socket.AF_INET6
    sockid = ports + src.packed.ljust(16, b"\0") + dst.packed.ljust(16, b"\0")
    sockid += struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)  # any interface, no cookie
    body = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 0, _ALL_STATES) + sockid
    size = _NLMSG_HEADER_SIZE + len(body)
    return struct.pack(_NLMSG_HEADER, size, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, seq, 0) + body


def parse_sock_diag_reply(data: bytes) -> int | None:
    """The socket inode in a sock_diag reply (0: the socket has no owner); None for an error.

    An error is never taken as "no such socket": ENOENT also means the kernel has
    no tcp_diag module to ask, and then only ``/proc/net/tcp`` can tell.
    """
    if len(data) < _NLMSG_HEADER_SIZE + _INET_DIAG_MSG_SIZE:
        return None  # an NLMSG_ERROR reply, or a truncated one
    if struct.unpack_from("=H", data, 4)[0] != _SOCK_DIAG_BY_FAMILY:
        return None
    # A TIME_WAIT socket answers with inode 0: it has no owner any more.
    return int(struct.unpack_from("=I", data, _NLMSG_HEADER_SIZE + _INET_DIAG_INODE_OFFSET)[0])


def sock_diag_inode(local: Endpoint, remote: Endpoint) -> int | None:
    """Ask the kernel for the inode of the TCP socket from ``local`` to ``remote``.

    0 if the socket has no owner left (TIME_WAIT); None if the kernel can't be
    asked (not Linux, netlink refused by a sandbox, no tcp_diag module) or knows
    no such socket: then :func:`proc_net_inode` has the last word.
    """
    request = sock_diag_request(local, remote)
    family = getattr(socket, "AF_NETLINK", None)
    if request is None or family is None:
        return None
    try:
        with socket.socket(family, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)  # the kernel answers at once; never strand a worker thread
            nl.sendall(request)
            return parse_sock_diag_reply(nl.recv(8192))
    except OSError:
        return None


# -- socket inode to pid ------------------------------------------------------------------------


def find_pid(
    peer: Endpoint, local: Endpoint, *, proc: Path = PROC, likely: Iterable[int] = ()
) -> int | None:
    """The pid of the local process on the other end of a TCP connection we accepted.

    ``peer`` and ``local`` are the connection's ends as the server sees them
    (``peername`` and ``sockname``). ``likely`` pids are checked first. None when
    the peer isn't a local process, has gone, or its ``/proc`` entries can't be read.
    """
    peer, local = (peer[0], peer[1]), (local[0], local[1])  # IPv6 names carry flow info, scope
    # The kernel can only speak for the real /proc; a test's fake one has its own tables.
    inode = sock_diag_inode(peer, local) if proc == PROC else None
    if inode is None:
        inode = proc_net_inode(peer, local, proc=proc)
    return find_socket_owner(inode, proc=proc, likely=likely) if inode else None


def proc_net_inode(local: Endpoint, remote: Endpoint, *, proc: Path = PROC) -> int | None:
    """The inode of the socket from ``local`` to ``remote``, read from ``/proc/net/tcp{,6}``.

    Each read costs milliseconds however few sockets there are (the kernel walks
    its whole hash table), so only the tables the address family can be in are read.
    """
    try:
        ipv4 = normalize_host(local[0]).version == 4
    except ValueError:
        return None
    for table in ("tcp", "tcp6") if ipv4 else ("tcp6",):
        text = _read_text(proc / "net" / table)
        inode = find_socket_inode(text, local, remote) if text else None
        if inode is not None:
            return inode
    return None


def find_socket_owner(inode: int, *, proc: Path = PROC, likely: Iterable[int] = ()) -> int | None:
    """The pid of a process holding socket ``inode`` open, or None.

    Reading every process's fds is the slow part (~4 µs an fd; 100 ms for 22,000),
    so ``likely`` pids (say, recent clients) are tried before all the others.
    """
    target = f"socket:[{inode}]"
    tried = set()
    for pid in likely:
        if _holds(os.path.join(proc, str(pid), "fd"), target):
            return pid
        tried.add(pid)
    for pid in _candidate_pids(proc):
        if pid not in tried and _holds(os.path.join(proc, str(pid), "fd"), target):
            return pid
    return None


def _candidate_pids(proc: Path) -> list[int]:
    """Every pid, newest first, our own last.

    Short-lived scripts are the likeliest clients and have the highest pids
    (until pids wrap, which costs speed, not correctness). The gateway itself has
    the most fds to read and is rarely its own client, so it goes last, not
    skipped: an in-process client is still attributed.
    """
    try:
        names = os.listdir(proc)
    except OSError:
        return []
    own = os.getpid()
    pids = sorted((int(n) for n in names if n.isdigit() and int(n) != own), reverse=True)
    if str(own) in names:
        pids.append(own)
    return pids


def _holds(fd_dir: str, target: str) -> bool:
    try:
        with os.scandir(fd_dir) as entries:
            for entry in entries:
                try:
                    if os.readlink(entry.path) == target:
                        return True
                except OSError:  # the fd was closed while we looked
                    continue
    except OSError:  # the process is gone or isn't ours to look at
        return False
    return False


# -- pid to project -----------------------------------------------------------------------------


def attribute_pid(pid: int, *, proc: Path = PROC) -> ProcessAttribution | None:
    """The project process ``pid`` belongs to, by the first rule that matches; None if none."""
    base = proc / str(pid)
    # A process's name, environment and directory are anyone's bytes: made valid text here.
    name = sane.maybe_text(process_name(pid, proc=proc))
    return attribute_identity(pid, name, env_project(_read_bytes(base / "environ")), proc=proc)


def attribute_identity(
    pid: int, name: str | None, from_env: str | None, *, proc: Path = PROC
) -> ProcessAttribution | None:
    """The project of ``pid`` whose name and environment's project are known already.

    The working directory is read now, and looked up through ``/proc/<pid>/root``:
    the process's own filesystem, which in another mount namespace (a container,
    ``unshare -m``, a bind mount) is not ours.
    """
    if from_env is not None:
        return ProcessAttribution(sane.text(from_env), "process:env", pid, name)
    base = proc / str(pid)
    cwd = _readlink(base / "cwd")
    if not cwd or not os.path.isabs(cwd):
        return None
    found = project_for_directory(Path(cwd), root=base / "root")
    if found is None:
        return None
    tags = {sane.text(k): sane.text(v) for k, v in found.tags.items()}
    return ProcessAttribution(sane.text(found.project), found.how, pid, name, tags)


def parse_environ(data: bytes) -> dict[str, str]:
    """Parse ``/proc/<pid>/environ`` (NUL-separated ``KEY=value``) into a dict."""
    env = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env


def env_project(data: bytes) -> str | None:
    """The ``TOLLHOUSE_PROJECT`` named in an environ block, if set and not blank.

    The block is the environment the process was started with: a later
    ``os.environ[...] =`` inside the process isn't visible from outside it.
    """
    if ENV_VAR.encode() not in data:  # the common case, without decoding anything
        return None
    return parse_environ(data).get(ENV_VAR, "").strip() or None


def project_for_directory(cwd: Path, *, root: Path | None = None) -> DirectoryProject | None:
    """The project of absolute directory ``cwd``: a ``.tollhouse`` file, else git root, else name.

    ``.tollhouse`` is looked for all the way up to ``/`` before git is considered.
    With ``root`` (a process's ``/proc/<pid>/root``) the files are read below it:
    ``cwd`` is a path in that process's filesystem.
    """
    git_root: Path | None = None
    for directory in (cwd, *cwd.parents):
        seen = Path(f"{root}{directory}") if root is not None else directory
        found = read_project_file(seen / PROJECT_FILE_NAME)
        if found is not None:
            return DirectoryProject(found.project, "process:file", found.tags)
        if git_root is None and os.path.exists(seen / ".git"):  # dir, or file in a worktree
            git_root = directory
    if git_root is not None and git_root.name:
        return DirectoryProject(git_root.name, "process:git")
    if cwd.name:
        return DirectoryProject(cwd.name, "process:cwd")
    return None


def process_name(pid: int, *, proc: Path = PROC) -> str | None:
    """The name of the executable ``pid`` runs, e.g. ``python3.11``; falls back to ``comm``."""
    base = proc / str(pid)
    exe = _readlink(base / "exe")
    if exe:
        return os.path.basename(exe)
    comm = _read_bytes(base / "comm").decode("utf-8", "replace").strip()
    return comm or None


# -- the async shell ----------------------------------------------------------------------------


class ProcessAttributor:
    """Finds, off the event loop, which local process is on the other end of a connection.

    A lookup starts as the request arrives and runs in a thread, in parallel with
    the upstream call; the gateway waits for it (time-capped) before the answer's
    last byte, so the client is still there to be looked at::

        attributor = ProcessAttributor()
        pending = attributor.start(request.transport)  # as the request arrives
        ...  # forward upstream meanwhile
        found = await attributor.resolve(pending)  # None: nothing to attribute

    Every request is looked up afresh (a keep-alive connection can change hands: a
    forked child inherits it, a directory is renamed); what is cached is keyed by
    what can't go stale: a process's name and environment by (pid, start time),
    and a socket's last holders only as the first place to look. A lookup that
    fails, runs over its cap or loses a race with an exiting process resolves to
    a ``process:failed`` attribution whose ``attribution_failed`` tag says why.
    """

    def __init__(
        self, *, timeout: float = 1.0, executor: concurrent.futures.Executor | None = None
    ) -> None:
        self._timeout = timeout
        self._executor = executor
        self._owns_executor = executor is None
        self._closed = False
        self._pending: set[asyncio.Future[ProcessAttribution | None]] = set()
        self._lock = threading.Lock()  # guards the three caches below, shared by worker threads
        # Clients that called before: a long-lived agent opening a fresh connection is
        # found among these instead of after a scan of every process.
        self._recent: collections.deque[int] = collections.deque(maxlen=8)
        self._holders: collections.OrderedDict[int, tuple[int, ...]] = collections.OrderedDict()
        self._identities: collections.OrderedDict[
            tuple[int, int], tuple[str | None, str | None]
        ] = collections.OrderedDict()

    def start(
        self, transport: asyncio.BaseTransport | None
    ) -> asyncio.Future[ProcessAttribution | None]:
        """Begin the lookup for ``transport``'s peer, from its event loop, as a request arrives."""
        loop = asyncio.get_running_loop()
        ends = loopback_ends(transport) if transport is not None else None
        if ends is None:
            return _resolved(loop, None)
        return self.start_for(*ends)

    def start_for(
        self, peer: Endpoint, local: Endpoint
    ) -> asyncio.Future[ProcessAttribution | None]:
        """Begin the lookup for a connection known by its two ends.

        For servers that aren't aiohttp's, such as the intercepting proxy, which
        starts it when it accepts the connection.
        """
        loop = asyncio.get_running_loop()
        try:
            loopback = normalize_host(peer[0]).is_loopback
        except ValueError:
            loopback = False
        if self._closed or not loopback:
            return _resolved(loop, None)
        try:
            pending = loop.run_in_executor(self._get_executor(), self._lookup, peer, local)
        except RuntimeError:  # the executor was shut down under us
            return _resolved(loop, None)
        self._pending.add(pending)
        pending.add_done_callback(self._pending.discard)
        return pending

    async def resolve(
        self, fut: asyncio.Future[ProcessAttribution | None], *, timeout: float | None = None
    ) -> ProcessAttribution | None:
        """Wait at most ``timeout`` (default: the attributor's) for a lookup.

        None when there is nothing to attribute (not a local peer, or the
        attributor closed); ``process:failed`` when the lookup raised or isn't done.
        """
        cap = self._timeout if timeout is None else timeout
        done, _ = await asyncio.wait({fut}, timeout=cap)  # unlike wait_for, never cancels fut
        if not done:
            return failed("timeout")
        if fut.cancelled():
            return None
        if fut.exception() is not None:
            return failed("error")
        return fut.result()

    def close(self) -> None:
        """Stop looking up; pending lookups resolve to None. The executor is shut down if ours.

        Call it from the event loop the lookups were started on (app cleanup).
        """
        self._closed = True
        for pending in list(self._pending):
            pending.cancel()  # a thread already running it finishes; its result is dropped
        self._pending.clear()
        if self._owns_executor and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _lookup(self, peer: Endpoint, local: Endpoint) -> ProcessAttribution | None:
        try:
            return self._identify_peer(peer, local)
        except Exception as exc:  # a lookup must never fail a request: say it failed, and why
            logger.exception("process attribution failed for %s -> %s", peer, local)
            return failed(f"error: {type(exc).__name__}")

    def _identify_peer(self, peer: Endpoint, local: Endpoint) -> ProcessAttribution | None:
        if not PROC.is_dir():
            return None  # not Linux: nothing this lookup can say
        peer, local = (peer[0], peer[1]), (local[0], local[1])
        inode = sock_diag_inode(peer, local)
        if inode is None:
            inode = proc_net_inode(peer, local)
        if not inode:  # gone, or TIME_WAIT (0): its process closed it
            return failed("socket closed")
        holders = owners.holders_from(self._last_holders(inode), inode)
        if not holders:
            holders = owners.find_holders(inode, likely=self._recent_pids(), skip=(os.getpid(),))
        if not holders:
            return failed("no process holds the socket")
        pid = owners.pick_sender(holders, inode)
        started = owners.start_time(pid)
        if started is None:
            return failed("process exited")
        self._remember(inode, holders, pid)
        return self._attribute(pid, started)

    def _attribute(self, pid: int, started: int) -> ProcessAttribution | None:
        name, from_env = self._identity(pid, started)
        found = attribute_identity(pid, name, from_env)
        if owners.start_time(pid) != started:  # exited (or the pid reused) while we read
            return failed("process exited")
        return found

    def _identity(self, pid: int, started: int) -> tuple[str | None, str | None]:
        """A process's name and environment's project: fixed for its life, so cached."""
        key = (pid, started)
        with self._lock:
            cached = self._identities.get(key)
        if cached is not None:
            return cached
        base = PROC / str(pid)
        identity = (
            sane.maybe_text(process_name(pid)),
            env_project(_read_bytes(base / "environ")),
        )
        with self._lock:
            _bounded_put(self._identities, key, identity)
        return identity

    def _last_holders(self, inode: int) -> tuple[int, ...]:
        with self._lock:
            return self._holders.get(inode, ())

    def _recent_pids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._recent)

    def _remember(self, inode: int, holders: list[int], pid: int) -> None:
        with self._lock:
            _bounded_put(self._holders, inode, tuple(holders))
            if pid in self._recent:
                self._recent.remove(pid)
            self._recent.appendleft(pid)

    def _get_executor(self) -> concurrent.futures.Executor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="tollhouse-attribution"
            )
        return self._executor


_CACHE_SIZE = 1024


def _bounded_put(cache: collections.OrderedDict[_K, _V], key: _K, value: _V) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def failed(reason: str) -> ProcessAttribution:
    """A lookup that couldn't say who: ``process:failed``, the reason in a tag.

    Distinct from None (nothing to attribute: not a local peer).
    """
    return ProcessAttribution(UNATTRIBUTED, FAILED, 0, None, {FAILED_TAG: reason})


def loopback_ends(transport: asyncio.BaseTransport) -> tuple[Endpoint, Endpoint] | None:
    """The (peer, local) ends of ``transport``'s connection if the peer is on loopback."""
    peer = _endpoint(transport.get_extra_info("peername"))
    local = _endpoint(transport.get_extra_info("sockname"))
    if peer is None or local is None:
        return None
    try:
        loopback = normalize_host(peer[0]).is_loopback
    except ValueError:
        return None
    return (peer, local) if loopback else None


def _endpoint(name: object) -> Endpoint | None:
    # A TCP name is (host, port) or, for IPv6, (host, port, flowinfo, scope_id);
    # a unix socket's is a path (str or bytes).
    if isinstance(name, tuple) and len(name) >= 2:
        host, port = name[0], name[1]
        if isinstance(host, str) and isinstance(port, int):
            return host, port
    return None


def _resolved(
    loop: asyncio.AbstractEventLoop, value: ProcessAttribution | None
) -> asyncio.Future[ProcessAttribution | None]:
    fut: asyncio.Future[ProcessAttribution | None] = loop.create_future()
    fut.set_result(value)
    return fut


# -- small, forgiving file readers --------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except (OSError, ValueError):
        return b""


def _read_text(path: Path) -> str:
    return _read_bytes(path).decode("ascii", "replace")


def _readlink(path: Path) -> str | None:
    try:
        target = os.readlink(path)
    except (OSError, ValueError):
        return None
    # A deleted cwd or executable reads as "/old/path (deleted)".
    return target.removesuffix(_DELETED)
