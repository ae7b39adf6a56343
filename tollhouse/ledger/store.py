"""Opening the ledger: SQLite (WAL, the default) or Postgres (``[ledger] url``).

A *location* is a SQLite file path or a ``postgresql://`` URL; every reader
and the one writer open it through :func:`connect`, migrations applied.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tollhouse.ledger.migrations import migrate
from tollhouse.ledger.postgres import connect_postgres, is_postgres

Location = Path | str  # a SQLite file, or a postgresql:// URL


def connect(location: Location, *, readonly: bool = False) -> Any:
    """A connection to the ledger at ``location``, migrated unless read-only.

    SQLite: WAL lets ``tollhouse report`` read while the gateway writes.
    ``synchronous=NORMAL`` in WAL mode keeps every committed transaction
    across a crash of the process, ``kill -9`` included (not across a power
    cut: that needs ``synchronous=FULL``). The crash guarantee for rows not
    yet committed comes from the journal (tollhouse/ledger/journal.py).
    Postgres: a :class:`~tollhouse.ledger.postgres.PgConnection`, same calls.
    """
    if is_postgres(location):
        pg = connect_postgres(str(location), readonly=readonly)
        if not readonly:
            migrate(pg)
        return pg
    path = Path(location)
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private(path)
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Time-ordered ids make every index append-mostly: a small cache holds the hot pages.
        conn.execute("PRAGMA cache_size=-8192")
        migrate(conn)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def private(path: Path) -> None:
    """Make the ledger file (and its WAL and shared-memory files) readable by us alone.

    Created 0600 when new; an older ledger made under a looser umask is tightened.
    SQLite gives the ``-wal`` and ``-shm`` files the database file's permissions.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if part.stat().st_mode & 0o077:
                part.chmod(0o600)


def describe(location: Location) -> str:
    """The location for a banner or a log line, without a password."""
    if is_postgres(location):
        from urllib.parse import urlsplit

        parts = urlsplit(str(location))
        host = parts.hostname or "localhost"
        return f"postgresql://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"
    return str(location)


@contextmanager
def transaction(conn: Any) -> Iterator[None]:
    """One write transaction on either ledger: committed, or rolled back if the body raises.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock up front (Postgres reads it as BEGIN).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
