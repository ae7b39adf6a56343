"""Numbered schema migrations, recorded in the database they changed.

Append new ones; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "requests: one row per client request",
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,                 -- request start, UTC ISO 8601
            request_id TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            attribution TEXT NOT NULL,        -- header | key | process:env|file|git|cwd | unattributed
            process_name TEXT,
            tags TEXT NOT NULL DEFAULT '{}',  -- JSON object
            dialect TEXT NOT NULL,
            provider TEXT,
            model_requested TEXT,
            model_served TEXT,
            status INTEGER NOT NULL,
            stream INTEGER NOT NULL,
            incomplete INTEGER NOT NULL,
            usage_raw TEXT,                   -- the provider's usage JSON as received
            input_tokens INTEGER,
            cached_input_tokens INTEGER,
            cache_write_tokens INTEGER,
            cache_write_1h_tokens INTEGER,
            output_tokens INTEGER,
            reasoning_tokens INTEGER,
            cost_usd TEXT,                    -- exact decimal; NULL when unknown
            price_source TEXT NOT NULL,       -- override | provider | genai-prices | unpriced | no-usage | error
            latency_ms REAL NOT NULL,
            ttfb_ms REAL,
            upstream_id TEXT,
            error TEXT
        );
        CREATE INDEX requests_ts ON requests (ts);
        CREATE INDEX requests_project_ts ON requests (project, ts);
        """,
    ),
    (
        2,
        "capacity: provenance on requests, one row per upstream attempt",
        """
        ALTER TABLE requests ADD COLUMN trust TEXT;          -- full | degraded
        ALTER TABLE requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN queue_wait_ms REAL NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN error_class TEXT;    -- of the last attempt
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            ts TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            status INTEGER,
            error_class TEXT,   -- rate_limit | overloaded | server | timeout | connection | model_gone | client
            latency_ms REAL,
            queue_wait_ms REAL NOT NULL DEFAULT 0,
            retry_after_s REAL,
            skipped TEXT        -- why a candidate was not tried
        );
        CREATE INDEX attempts_request ON attempts (request_id);
        CREATE INDEX attempts_ts ON attempts (ts);
        """,
    ),
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database lacks; return the schema version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        # One script, one transaction: the schema change and its record land together.
        quoted = name.replace("'", "''")
        record = f"INSERT INTO schema_migrations VALUES ({version}, '{quoted}', datetime('now'));"
        conn.executescript(f"BEGIN;\n{sql}\n{record}\nCOMMIT;")
    return max((v for v, _, _ in MIGRATIONS), default=0)
