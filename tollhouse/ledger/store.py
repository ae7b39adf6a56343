"""Opening the SQLite ledger: WAL mode, migrations applied."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tollhouse.ledger.migrations import migrate


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the ledger at ``path``, migrated unless read-only.

    WAL lets ``tollhouse report`` read while the gateway writes.
    ``synchronous=NORMAL`` in WAL mode keeps every committed transaction
    across a crash of the process (not across a power cut).
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Time-ordered ids make every index append-mostly: a small cache holds the hot pages.
        conn.execute("PRAGMA cache_size=-8192")
        migrate(conn)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn
