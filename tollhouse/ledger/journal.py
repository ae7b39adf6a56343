"""The write-ahead journal: a ledger row on disk before the client has its answer.

The writer commits in batches, off the request path; a ``kill -9`` between a
response and its batch's commit would lose rows the client was billed for.
So just before a response's last byte (a body handed to aiohttp, a stream's
terminal event), its entry is appended to this journal: copied into a segment
file mapped into memory (``mmap``, ``MAP_SHARED``). What is copied is the
entry's plain values (:func:`~tollhouse.ledger.entry.to_facts`, ``marshal``
encoded, length- and CRC-framed), not its priced row: pricing and formatting
wait until after the response (measured: ~45 µs a request in place, then ~12). No system call and no
fsync on the request path: the bytes are in the kernel's page cache the
moment they are copied, and the page cache outlives the process. (A
``write(2)`` per row was measured first: it releases the GIL, and getting
it back behind the writer thread cost ~9 µs a row.) Segments are allocated
up front (``posix_fallocate``), so a full disk shows at rotation, as a log
line, never as a crash. On start, segments left by a dead process are replayed into
the ledger (``INSERT ... ON CONFLICT (request_id) DO NOTHING``, so a row the
writer did commit is not doubled) and deleted.

A segment is deleted once every row in it has been committed: each append
pins its segment until the row is handed to the writer, and a rotated
segment with no pins is forgotten after the writer's next commit.
Each live segment is ``flock``-ed by its process, so instances sharing a
journal directory never replay each other's live rows.

>>> journal = Journal(Path("ledger.db.journal")).open(forget=writer.forget)
>>> segment = journal.append(to_facts(entry))
>>> journal.release(segment)   # once the row is queued for the writer
"""

from __future__ import annotations

import fcntl
import json
import logging
import marshal
import mmap
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tollhouse.ledger.entry import plain_facts
from tollhouse.ledger.store import transaction

log = logging.getLogger("tollhouse.ledger")

SUFFIX = ".seg"
LEGACY_SUFFIX = ".jsonl"  # priced rows as JSON lines, before 2026-12-01; still replayed
_HEAD = struct.Struct("<II")  # payload length, CRC-32 of the payload


class Segment:
    """One journal file, mapped, and the rows in it not yet handed to the writer."""

    __slots__ = ("fd", "lines", "map", "offset", "path", "pins", "rotated")

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path, self.fd = path, fd
        self.map = mmap.mmap(fd, size)  # MAP_SHARED: the page cache holds what we copy
        self.lines = self.pins = self.offset = 0
        self.rotated = False

    def fits(self, line: bytes) -> bool:
        return self.offset + len(line) <= len(self.map)

    def put(self, line: bytes) -> None:
        end = self.offset + len(line)
        self.map[self.offset : end] = line
        self.offset = end
        self.lines += 1
        self.pins += 1


class Journal:
    """Append-only segments of ledger rows; used from the event loop only."""

    def __init__(
        self, directory: Path, *, rotate_every: int = 8192, segment_bytes: int = 8 << 20
    ) -> None:
        self.directory = directory
        self.rotate_every = rotate_every
        self.segment_bytes = segment_bytes
        self._current: Segment | None = None
        self._live: list[Segment] = []
        self._forget: Callable[[Path, int], None] = _close_only

    def open(self, forget: Callable[[Path, int], None] | None = None) -> Journal:
        """``forget(path, fd)``: delete a segment once what was queued before is committed."""
        if forget is not None:
            self._forget = forget
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._current = self._new_segment(self.segment_bytes)
        return self

    def append(self, facts: tuple[Any, ...]) -> Segment | None:
        """Copy one entry's facts in; the segment stays pinned until released.

        None when no segment could be allocated (a full disk): the row then goes
        the ordinary way, committed with its batch, without the crash guarantee.
        """
        line = encode(facts)
        segment = self._current
        if segment is None or not segment.fits(line) or segment.lines >= self.rotate_every:
            segment = self._rotate(len(line))
            if segment is None:
                return None
        segment.put(line)
        return segment

    def _rotate(self, need: int) -> Segment | None:
        if self._current is not None:
            self._current.rotated = True
            if self._current.pins == 0:  # every row in it is queued for the writer
                self._retire(self._current)
        try:
            self._current = self._new_segment(max(self.segment_bytes, need))
        except OSError as exc:
            self._current = None
            log.error("ledger journal: can't allocate a segment in %s (%s)", self.directory, exc)
        return self._current

    def release(self, segment: Segment) -> None:
        """The row appended to ``segment`` is queued for the writer now."""
        segment.pins -= 1
        if segment.rotated and segment.pins == 0:
            self._retire(segment)

    def _retire(self, segment: Segment) -> None:
        self._live.remove(segment)
        segment.map.close()  # the copied bytes stay in the page cache, and in the file
        # The writer deletes it once what was queued before is committed, then unlocks.
        self._forget(segment.path, segment.fd)

    def close(self, *, delete: bool) -> None:
        """At shutdown, after the writer committed everything: drop our segments."""
        for segment in self._live:
            segment.map.close()
            os.close(segment.fd)
            if delete and segment.pins == 0:  # a pinned row never reached the writer: keep
                segment.path.unlink(missing_ok=True)
        self._live.clear()
        self._current = None

    def _new_segment(self, size: int) -> Segment:
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while we live
            os.posix_fallocate(fd, 0, size)  # real blocks: no SIGBUS on a full disk later
            segment = Segment(path, fd, size)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._live.append(segment)
        return segment


def _close_only(path: Path, fd: int) -> None:
    os.close(fd)  # no writer to wait for: keep the file for the next start's replay


def orphans(directory: Path) -> Iterator[tuple[Path, int]]:
    """Segments no live process holds, oldest first, each with its lock held."""
    if not directory.is_dir():
        return
    paths = [*directory.glob("*" + SUFFIX), *directory.glob("*" + LEGACY_SUFFIX)]
    for path in sorted(paths):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a running instance's segment
        yield path, fd


def encode(facts: tuple[Any, ...]) -> bytes:
    """One record: length, CRC-32, then the marshalled facts."""
    try:
        payload = marshal.dumps(facts)
    except ValueError:  # decimals in a usage object (OpenRouter's cost), an enum...
        payload = marshal.dumps(plain_facts(facts))
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def read_facts(path: Path) -> dict[str, tuple[Any, ...]]:
    """The last record per request id (a stream may be journaled more than once).

    A torn last record (the process died mid-copy) fails its CRC and ends the
    segment: its response had not been completed, since the copy precedes the
    last byte.
    """
    found: dict[str, tuple[Any, ...]] = {}
    data = path.read_bytes()
    at = 0
    while at + _HEAD.size <= len(data):
        size, crc = _HEAD.unpack_from(data, at)
        payload = data[at + _HEAD.size : at + _HEAD.size + size]
        if size == 0 or len(payload) < size or zlib.crc32(payload) != crc:
            break  # the allocated, never written rest of the segment (or a torn record)
        facts = marshal.loads(payload)
        found[facts[1]] = facts
        at += _HEAD.size + size
    return found


def read_rows(path: Path) -> dict[str, tuple[list[Any], list[list[Any]]]]:
    """A legacy segment's rows: the last line per request id; a torn line is skipped."""
    rows: dict[str, tuple[list[Any], list[list[Any]]]] = {}
    data = path.read_bytes()
    end = data.find(b"\0")  # the allocated, never written rest of the segment
    for line in (data if end < 0 else data[:end]).splitlines():
        try:
            row, attempts = json.loads(line)
        except ValueError:
            continue
        rows[row[1]] = (row, attempts)
    return rows


Rows = tuple[Any, list[Any]]  # a request row and its attempt rows


Quarantine = Callable[[str, Any, BaseException], None]  # the writer's: kind, content, why


def _rows(
    rows_of: Callable[[tuple[Any, ...]], Rows], found: Any, quarantine: Quarantine
) -> list[Rows]:
    rows = []
    for facts in found:
        try:
            rows.append(rows_of(facts))
        except Exception as exc:  # one unreadable record must not stop the gateway starting
            quarantine("journal", facts, exc)
    return rows


def replay(
    directory: Path,
    conn: Any,
    rows_of: Callable[[tuple[Any, ...]], Rows],
    insert: str,
    insert_attempt: str,
    quarantine: Quarantine,
) -> int:
    """Put the rows of dead processes' segments into the ledger; return how many were new.

    ``rows_of`` prices and formats one entry's facts, as the writer does. A row the
    ledger refuses is quarantined (``quarantine``) and the rest still go in: one bad
    row must never stop a restart.
    """
    added = 0
    for path, fd in orphans(directory):
        try:
            try:
                if path.suffix == LEGACY_SUFFIX:
                    rows: list[Rows] = list(read_rows(path).values())
                else:
                    rows = _rows(rows_of, read_facts(path).values(), quarantine)
            except Exception as exc:  # unreadable: keep the file for a person to look at
                log.error("ledger journal: can't read %s (%s); left in place", path, exc)
                continue
            added += _insert(conn, rows, insert, insert_attempt, quarantine)
            path.unlink()
        finally:
            os.close(fd)
    if added:
        log.warning("ledger: replayed %d rows from the journal of a process that died", added)
    return added


def _insert(
    conn: Any, rows: list[Rows], insert: str, insert_attempt: str, quarantine: Quarantine
) -> int:
    """Insert ``rows`` in one transaction; if that fails, one by one, quarantining refusals."""
    try:
        return _insert_together(conn, rows, insert, insert_attempt)
    except Exception as exc:
        if len(rows) == 1:
            quarantine("request", rows[0], exc)
            return 0
    return sum(_insert(conn, [row], insert, insert_attempt, quarantine) for row in rows)


def _insert_together(conn: Any, rows: list[Rows], insert: str, insert_attempt: str) -> int:
    added = 0
    with transaction(conn):
        for row, attempts in rows:
            if conn.execute(insert, row).rowcount == 1:
                added += 1
                for attempt in attempts:
                    conn.execute(insert_attempt, attempt)
    return added
