"""The write-ahead journal: a ledger row on disk before the client has its answer.

The writer commits in batches, off the request path; a ``kill -9`` between a
response and its batch's commit would lose rows the client was billed for.
So just before a response's last byte (a body handed to aiohttp, a stream's
terminal event), its row is appended to this journal with one ``write(2)``
(~2 µs; no fsync: the bytes are in the kernel's page cache, which survives
the process). On start, segments left by a dead process are replayed into
the ledger (``INSERT ... ON CONFLICT (request_id) DO NOTHING``, so a row the
writer did commit is not doubled) and deleted.

A segment is deleted once every row in it has been committed: each append
pins its segment until the row is handed to the writer, and a rotated
segment with no pins is forgotten after the writer's next commit.
Each live segment is ``flock``-ed by its process, so instances sharing a
journal directory never replay each other's live rows.

>>> journal = Journal(Path("ledger.db.journal")).open()
>>> segment = journal.append(row, attempts)
>>> journal.release(segment, writer.forget)   # after writer.submit(...)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("tollhouse.ledger")

SUFFIX = ".jsonl"


class Segment:
    """One journal file and the rows in it not yet handed to the writer."""

    __slots__ = ("fd", "lines", "path", "pins", "rotated")

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd
        self.lines = self.pins = 0
        self.rotated = False


class Journal:
    """Append-only segments of ledger rows; used from the event loop only."""

    def __init__(self, directory: Path, *, rotate_every: int = 4096) -> None:
        self.directory = directory
        self.rotate_every = rotate_every
        self._current: Segment | None = None
        self._live: list[Segment] = []

    def open(self) -> Journal:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._current = self._new_segment()
        return self

    def append(self, row: tuple[Any, ...], attempts: list[tuple[Any, ...]]) -> Segment:
        """Write one row (and its attempts); the segment stays pinned until released."""
        segment = self._current
        assert segment is not None, "Journal.open() first"
        os.write(segment.fd, json.dumps([row, attempts], separators=(",", ":")).encode() + b"\n")
        segment.lines += 1
        segment.pins += 1
        if segment.lines >= self.rotate_every:
            segment.rotated = True
            self._current = self._new_segment()
        return segment

    def release(self, segment: Segment, forget: Callable[[Path, int], None]) -> None:
        """The row appended to ``segment`` is queued for the writer now."""
        segment.pins -= 1
        if segment.rotated and segment.pins == 0:
            self._live.remove(segment)
            # The writer deletes it once what precedes is committed, then drops the lock.
            forget(segment.path, segment.fd)

    def close(self, *, delete: bool) -> None:
        """At shutdown, after the writer committed everything: drop our segments."""
        for segment in self._live:
            os.close(segment.fd)
            if delete:
                segment.path.unlink(missing_ok=True)
        self._live.clear()
        self._current = None

    def _new_segment(self) -> Segment:
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while we live
        segment = Segment(path, fd)
        self._live.append(segment)
        return segment


def orphans(directory: Path) -> Iterator[tuple[Path, int]]:
    """Segments no live process holds, oldest first, each with its lock held."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*" + SUFFIX)):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a running instance's segment
        yield path, fd


def read_rows(path: Path) -> dict[str, tuple[list[Any], list[list[Any]]]]:
    """The last line per request id (a stream may be journaled more than once).

    A torn last line (the process died mid-write) is skipped: its response
    had not been completed, since the line precedes the last byte.
    """
    rows: dict[str, tuple[list[Any], list[list[Any]]]] = {}
    with path.open("rb") as f:
        for line in f:
            try:
                row, attempts = json.loads(line)
            except ValueError:
                continue
            rows[row[1]] = (row, attempts)
    return rows


def replay(directory: Path, conn: Any, insert: str, insert_attempt: str) -> int:
    """Put the rows of dead processes' segments into the ledger; return how many were new."""
    added = 0
    for path, fd in orphans(directory):
        try:
            rows = read_rows(path)
            conn.execute("BEGIN IMMEDIATE")
            for row, attempts in rows.values():
                if conn.execute(insert, row).rowcount == 1:
                    added += 1
                    for attempt in attempts:
                        conn.execute(insert_attempt, attempt)
            conn.execute("COMMIT")
            path.unlink()
        finally:
            os.close(fd)
    if added:
        log.warning("ledger: replayed %d rows from the journal of a process that died", added)
    return added
