"""The one writer of the ledger: priced and queued by the caller, committed in batches.

The caller (the event loop) prices an entry and turns it into a row (~15 µs);
a thread commits whatever queued up every ``linger`` seconds in one
transaction. The thread does almost nothing but SQLite, which releases the
GIL: a writer thread doing Python work per row was measured to add ~150 µs
to every request at one connection, as the loop waited for the GIL.

>>> writer = LedgerWriter(Path("ledger.db"), Pricer({})).start()
>>> writer.submit(entry)
>>> writer.flush()       # everything submitted so far is committed
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tollhouse import sane
from tollhouse.attribution.gitcontext import GitContext
from tollhouse.ledger import fusion, totals
from tollhouse.ledger import journal as journaling
from tollhouse.ledger.entry import LedgerEntry, from_facts, normalise, to_facts
from tollhouse.ledger.journal import Journal, Segment
from tollhouse.ledger.store import Location, connect, transaction
from tollhouse.pricing import Cost, PriceQuery, Pricer

log = logging.getLogger("tollhouse.ledger")

COLUMNS = (
    "ts, request_id, project, attribution, process_name, tags, dialect, provider, "
    "model_requested, model_served, status, stream, incomplete, usage_raw, input_tokens, "
    "cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, "
    "reasoning_tokens, cost_usd, price_source, latency_ms, ttfb_ms, upstream_id, error, "
    "trust, attempts, queue_wait_ms, error_class, git_repo, git_branch, git_head, git_dirty"
)
INSERT = f"INSERT INTO requests ({COLUMNS}) VALUES ({', '.join('?' * 34)})"
ATTEMPT_COLUMNS = (
    "request_id, n, ts, provider, model, status, error_class, latency_ms, queue_wait_ms, "
    "retry_after_s, skipped"
)
INSERT_ATTEMPT = f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 11)})"
QUARANTINE = "INSERT INTO quarantine (ts, request_id, kind, reason, content) VALUES (?, ?, ?, ?, ?)"
# Replaying the journal: a row the writer did commit before the crash stays single.
REPLAY = INSERT + " ON CONFLICT (request_id) DO NOTHING"
REPLAY_ATTEMPT = INSERT_ATTEMPT

_STOP = object()
_NO_TOKENS = (None,) * 6
# One encoder each, not one per row (json.dumps with options builds a new one).
_TAGS_JSON = json.JSONEncoder(sort_keys=True).encode
_USAGE_JSON = json.JSONEncoder(default=str).encode


class Sealed:
    """An entry as journaled before its response's last byte (priced after it)."""

    __slots__ = ("entry", "segment")

    def __init__(self, entry: LedgerEntry, segment: Segment) -> None:
        self.entry, self.segment = entry, segment


class _Forget:
    """A journal segment to delete once everything queued before it is committed."""

    __slots__ = ("fd", "path")

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd


class Statements:
    """SQL statements committed together with the next batch; ``done(ok)`` after."""

    __slots__ = ("done", "items")

    def __init__(self, items: list[tuple[str, tuple[Any, ...]]], done: Any = None) -> None:
        self.items = items
        self.done = done


class LedgerWriter:
    """Owns the ledger's write connection and the thread that uses it."""

    def __init__(
        self,
        path: Location,
        pricer: Pricer,
        *,
        batch_size: int = 256,
        linger: float = 0.02,
        journal: Path | None = None,
    ) -> None:
        self.path = path  # a SQLite file or a postgresql:// URL
        self.journal = None if journal is None else Journal(journal)
        self._failed = False  # a commit failed: keep the journal for the next start
        self.pricer = pricer
        self.batch_size = batch_size
        self.linger = linger
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tollhouse-ledger", daemon=True)
        self.written = 0
        self.quarantined = 0  # rows and statement groups that could not be written
        self.outages = 0  # times the ledger was unreachable and the writer waited for it
        self.totals_behind = False  # found at start: the derived totals miss rows
        self._closing = threading.Event()

    def start(self) -> LedgerWriter:
        self._conn = connect(self.path)
        self.totals_behind = behind(self._conn)
        if self.journal is not None:
            journaling.replay(
                self.journal.directory,
                self._conn,
                self._replayed,
                REPLAY,
                REPLAY_ATTEMPT,
                self._quarantine,
            )
            self.journal.open(forget=self.forget)
        self._thread.start()
        return self

    def seal(self, entry: LedgerEntry) -> Sealed | None:
        """Journal ``entry``'s row before the client gets its last byte (see journal.py).

        Returns what :meth:`submit_sealed` queues later; None without a journal.
        """
        if self.journal is None:
            return None
        try:
            segment = self.journal.append(to_facts(entry))
        except Exception:  # a journal bug must not cost the request: it goes unjournaled
            log.exception("ledger journal: can't journal %s", entry.request_id)
            return None
        return None if segment is None else Sealed(entry, segment)

    def submit_sealed(self, sealed: Sealed, entry: LedgerEntry | None = None) -> Cost:
        """Queue a sealed row (or ``entry``, when it changed since) and unpin its journal."""
        try:
            return self.submit(sealed.entry if entry is None else entry)
        finally:
            assert self.journal is not None
            self.journal.release(sealed.segment)

    def unpin(self, sealed: Sealed) -> None:
        """A sealed row superseded by a later line of the same request."""
        assert self.journal is not None
        self.journal.release(sealed.segment)

    def forget(self, path: Path, fd: int) -> None:
        self._queue.put(_Forget(path, fd))

    def submit(self, entry: LedgerEntry) -> Cost:
        """Price ``entry`` and queue its row; never blocks on I/O. Returns the cost.

        The entry is normalised first (:func:`~tollhouse.ledger.entry.normalise`), in
        place, so whatever else reads it afterwards (metrics) sees the same safe values.
        """
        cost, row, attempts = self._rows(normalise(entry))
        self._queue.put((row, attempts))
        if entry.fusion_calls:  # a fused request's calls: committed with its row's batch
            calls = fusion.call_rows(entry.request_id, entry.fusion_calls, entry.ts, self.pricer)
            self._queue.put(Statements(calls))
        return cost

    def _replayed(self, facts: tuple[Any, ...]) -> tuple[Any, list[Any]]:
        _, row, attempts = self._rows(normalise(from_facts(facts)))
        return row, attempts

    def _rows(self, e: LedgerEntry) -> tuple[Cost, tuple[Any, ...], list[tuple[Any, ...]]]:
        """The entry priced, as its request row and its attempt rows."""
        cost, ts = self._cost(e), e.ts.isoformat(timespec="microseconds")
        return cost, self._row(e, cost, ts), self._attempt_rows(e, ts)

    def execute(self, items: list[tuple[str, tuple[Any, ...]]], done: Any = None) -> None:
        """Queue statements for the writer thread; ``done(ok: bool)`` is called from
        that thread once they are committed (or failed)."""
        self._queue.put(Statements(items, done))
        self._wake.set()  # not lingered over: a caller may be waiting for the commit

    def flush(self, timeout: float | None = 30) -> bool:
        """Block until everything submitted before this call is committed."""
        done = threading.Event()
        self._queue.put(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self) -> None:
        self._closing.set()  # a writer waiting out an outage stops waiting: the journal keeps it
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
            self._thread.join(30)
        self._conn.close()
        if self.journal is not None:  # everything is committed now, unless a commit failed
            self.journal.close(delete=not self._failed and not self._thread.is_alive())

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            if isinstance(batch[0], tuple):
                # Let rows gather: one wake-up and one commit per batch, not per row.
                self._wake.wait(self.linger)
            self._wake.clear()
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not self._write(batch):
                return

    def _write(self, batch: list[Any]) -> bool:
        rows = [item for item in batch if isinstance(item, tuple)]
        for start in range(0, len(rows), self.batch_size):
            self._commit(rows[start : start + self.batch_size])
        statements = [item for item in batch if isinstance(item, Statements)]
        if statements:
            self._execute(statements)
        for item in batch:
            if isinstance(item, threading.Event):
                item.set()
            elif isinstance(item, _Forget):
                if not self._failed:
                    item.path.unlink(missing_ok=True)
                os.close(item.fd)
        return _STOP not in batch

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        while True:
            try:
                self._insert(rows)
            except Exception as exc:
                if _outage(exc):  # the ledger, not the rows: wait for it, then try again
                    if self._wait_for_ledger(exc):
                        continue
                elif len(rows) > 1:
                    log.warning("ledger write of %d rows failed; one by one now", len(rows))
                    for row in rows:  # one bad row must not cost the rest of its batch
                        self._commit([row])
                else:
                    self._quarantine("request", rows[0], exc)
                return
            self.written += len(rows)
            return

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        with transaction(self._conn):
            self._conn.executemany(INSERT, [request for request, _ in rows])
            attempts = [a for _, per_request in rows for a in per_request]
            if attempts:
                self._conn.executemany(INSERT_ATTEMPT, attempts)

    def _execute(self, batch: list[Statements]) -> None:
        while True:
            try:
                with transaction(self._conn):
                    for statements in batch:
                        for sql, params in statements.items:
                            self._conn.execute(sql, params)
            except Exception as exc:
                if _outage(exc):
                    if self._wait_for_ledger(exc):
                        continue
                    for statements in batch:  # closing: not written
                        _done(statements, False)
                elif len(batch) > 1:  # one group's bad value must not fail the other groups
                    for statements in batch:
                        self._execute([statements])
                else:
                    self._quarantine("statements", batch[0].items, exc)
                    _done(batch[0], False)
                return
            for statements in batch:
                _done(statements, True)
            return

    def _wait_for_ledger(self, exc: BaseException) -> bool:
        """The ledger is unreachable (Postgres restarting, SQLite locked or full): wait
        for it with backoff, reconnecting, until it answers (True) or the writer closes
        (False: what's unwritten stays in the journal for the next start).

        Rows keep queueing meanwhile; the journal holds every answered one.
        """
        self.outages += 1
        log.warning("ledger unreachable (%s); waiting for it", _first_line(exc))
        pause = 0.05
        while not self._closing.wait(pause):
            try:
                self._reconnect()
            except Exception as again:
                log.debug("ledger still unreachable: %s", _first_line(again))
                pause = min(pause * 2, 5.0)
                continue
            log.warning("ledger reachable again")
            return True
        self._failed = True
        return False

    def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = connect(self.path)
        self._conn.execute("SELECT 1").fetchall()

    def _quarantine(self, kind: str, content: Any, exc: BaseException) -> None:
        """Keep what couldn't be written, with why, where the report can show it.

        Its content is stored as escaped ASCII, which any ledger accepts. If even
        that fails (the disk is full, the database is gone), the journal is kept
        for the next start, which replays it.
        """
        self.quarantined += 1
        request_id = _request_id(kind, content)
        log.error("ledger: %s %s quarantined: %s", kind, request_id or "", ascii(exc))
        row = (_now(), request_id, kind, ascii(exc)[:1024], ascii(content))
        try:
            with transaction(self._conn):
                self._conn.execute(QUARANTINE, row)
        except Exception:
            self._failed = True
            log.exception("ledger: can't even quarantine %s; the journal keeps it", request_id)

    def _attempt_rows(self, e: LedgerEntry, ts: str) -> list[tuple[Any, ...]]:
        if not e.attempts:
            return []
        return [
            (
                e.request_id,
                a.n,
                ts,
                sane.maybe_text(a.provider),
                sane.maybe_text(a.model),  # the name a client asked for
                a.status,
                a.error_class,
                None if a.latency_ms is None else round(a.latency_ms, 3),
                round(a.queue_wait_ms, 3),
                sane.number(a.retry_after_s),  # a provider's header
                sane.maybe_text(a.skipped, sane.LONG_TEXT_LIMIT),
            )
            for a in e.attempts
        ]

    def _row(self, e: LedgerEntry, cost: Cost, ts: str) -> tuple[Any, ...]:
        u = e.usage
        return (
            ts,
            e.request_id,
            e.project,
            e.attribution,
            e.process_name,
            _TAGS_JSON(e.tags) if e.tags else "{}",
            e.dialect,
            e.provider,
            e.model_requested,
            e.model_served,
            e.status,
            int(e.stream),
            int(e.incomplete),
            None if u is None else _USAGE_JSON(u.raw),
            *(_NO_TOKENS if u is None else u.counts()),
            None if cost.usd is None else _plain(cost.usd),
            cost.source,
            round(e.latency_ms, 3),
            None if e.ttfb_ms is None else round(e.ttfb_ms, 3),
            e.upstream_id,
            e.error,
            e.trust,
            e.attempt_count,
            round(e.queue_wait_ms, 3),
            e.error_class,
            *_git_columns(e.git),
        )

    def _cost(self, e: LedgerEntry) -> Cost:
        if e.fusion_calls:  # the sum of its calls, each priced as its own model
            return fusion.total_cost(e.fusion_calls, e.ts, self.pricer)
        if e.usage is None:
            return Cost(None, "no-usage") if e.status < 400 else Cost(Decimal(0), "error")
        if e.usage.odd is not None:  # kept raw, not priced as if it were true
            log.warning("odd usage from %s for %s: %s", e.provider, e.request_id, e.usage.odd)
            return Cost(None, "odd-usage")
        models = tuple(m for m in (e.model_served, e.model_requested) if m)
        try:
            return self.pricer.cost(
                PriceQuery(
                    e.provider or "", e.pricing_provider, models, e.usage, e.reported_cost, e.ts
                )
            )
        except Exception:  # a pricing bug must not cost the row
            log.exception("pricing failed for %s", e.request_id)
            return Cost(None, "unpriced")


def behind(conn: Any) -> bool:
    """Whether the ledger's derived totals miss rows; says so in the log if they do.

    They are behind after the upgrade that added them, on a ledger with rows:
    reports read the rows (slowly) until `tollhouse ledger rebuild`.
    """
    found = totals.state(conn)["state"]
    if found == "current":
        return False
    log.warning(
        "ledger: the daily totals are %s the rows (a ledger from before them, or edited): "
        "reports read every row until you run `tollhouse ledger rebuild`",
        found,
    )
    return True


_NO_GIT = (None, None, None, None)


def _git_columns(git: GitContext | None) -> tuple[Any, ...]:
    if git is None:
        return _NO_GIT
    dirty = None if git.dirty is None else int(git.dirty)
    return (git.repo, sane.maybe_text(git.branch), git.head, dirty)


def _outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the ledger is unreachable, rather than that a row is bad.

    SQLite: locked or busy past the timeout, disk I/O errors, a full disk. Postgres:
    psycopg's OperationalError (connection lost, server shutting down) and
    InterfaceError (the connection is closed).
    """
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(word in text for word in ("locked", "busy", "disk", "unable to open"))
    kind = type(exc)
    names = {k.__name__ for k in kind.__mro__}
    return kind.__module__.startswith("psycopg") and bool(
        names & {"OperationalError", "InterfaceError"}
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _done(statements: Statements, ok: bool) -> None:
    if statements.done is not None:
        statements.done(ok)


def _request_id(kind: str, content: Any) -> str | None:
    """The request id of a quarantined row, when it has one that can be stored."""
    try:
        if kind == "request":  # (row, attempts)
            found = content[0][1]
        elif kind == "journal":  # an entry's facts
            found = content[1]
        else:
            return None
        return None if found is None else ascii(str(found))[1:-1][:128]
    except Exception:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _plain(d: Decimal) -> str:
    """A decimal as plain text ('0.00000125', never '1.25E-6')."""
    return format(d, "f")
