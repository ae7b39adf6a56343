"""Numbered schema migrations, recorded in the database they changed.

Append new ones; never edit one that has shipped. They are written once, in
SQLite's DDL (TEXT/INTEGER/REAL, ``INTEGER PRIMARY KEY``); on Postgres the
runner translates the types (:func:`tollhouse.ledger.postgres.translate_ddl`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tollhouse.ledger import fusion
from tollhouse.ledger.postgres import translate_ddl
from tollhouse.ledger.totals import V6_DIMENSIONS, trigger_sql

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
    (
        3,
        "trust: trajectories, gate decisions, idempotent actions, answer cache, divergence",
        """
        CREATE TABLE trust_steps (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            task TEXT NOT NULL,
            step TEXT NOT NULL,
            request_id TEXT NOT NULL,         -- joins requests (project, model, cost)
            own TEXT NOT NULL,                -- full | degraded: the step's own answer
            degraded_because TEXT,
            inputs TEXT                       -- JSON list of step ids; NULL: every earlier step
        );
        CREATE INDEX trust_steps_task ON trust_steps (task);
        CREATE INDEX trust_steps_ts ON trust_steps (ts);
        CREATE TABLE trust_clearances (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            task TEXT NOT NULL,
            step TEXT NOT NULL,
            how TEXT NOT NULL,                -- verified | approved
            cleared_by TEXT,
            similarity REAL
        );
        CREATE INDEX trust_clearances_task ON trust_clearances (task);
        CREATE TABLE trust_gate (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            project TEXT NOT NULL,
            task TEXT NOT NULL,
            action TEXT NOT NULL,
            irreversible INTEGER NOT NULL,
            allow INTEGER NOT NULL,
            tainted_by TEXT NOT NULL          -- JSON list of step ids
        );
        CREATE INDEX trust_gate_ts ON trust_gate (ts);
        CREATE TABLE trust_actions (
            id INTEGER PRIMARY KEY,
            action_id TEXT NOT NULL UNIQUE,
            ts TEXT NOT NULL,
            created REAL NOT NULL,            -- unix seconds: retention
            project TEXT NOT NULL,
            idem_key TEXT NOT NULL,           -- the client's Idempotency-Key (not a credential)
            fingerprint TEXT NOT NULL,
            task TEXT NOT NULL,
            name TEXT NOT NULL,
            irreversible INTEGER NOT NULL,
            tainted INTEGER NOT NULL,         -- the trajectory was tainted when it was claimed
            status TEXT NOT NULL,             -- in_flight | succeeded | failed | abandoned
            result TEXT,                      -- JSON, as the agent reported it
            completed_ts TEXT
        );
        CREATE INDEX trust_actions_key ON trust_actions (project, idem_key);
        CREATE INDEX trust_actions_ts ON trust_actions (ts);
        CREATE TABLE trust_cache (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            cache_key TEXT NOT NULL,
            assumes TEXT,
            body TEXT NOT NULL,               -- opted-in answers only
            content_type TEXT NOT NULL,
            served_by TEXT NOT NULL,
            created REAL NOT NULL,
            expires REAL NOT NULL
        );
        CREATE INDEX trust_cache_key ON trust_cache (cache_key);
        CREATE TABLE trust_cache_lookups (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            request_id TEXT NOT NULL,
            outcome TEXT NOT NULL             -- hit | miss | validity_miss
        );
        CREATE INDEX trust_cache_lookups_ts ON trust_cache_lookups (ts);
        CREATE TABLE trust_divergence (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            request_id TEXT NOT NULL,         -- the degraded answer's request
            kind TEXT NOT NULL,               -- fallback (sampled replay) | verify
            task TEXT,
            step TEXT,
            primary_model TEXT NOT NULL,
            other_model TEXT NOT NULL,
            similarity REAL NOT NULL
        );
        CREATE INDEX trust_divergence_ts ON trust_divergence (ts);
        """,
    ),
    (
        4,
        "budgets shared by instances: spend per project and period, holds in flight",
        """
        CREATE TABLE budget_periods (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            period TEXT NOT NULL,             -- UTC day 2026-12-01 or month 2026-12
            spent_usd TEXT NOT NULL,          -- exact decimal
            UNIQUE (project, period)
        );
        CREATE TABLE budget_holds (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            day TEXT NOT NULL,
            month TEXT NOT NULL,
            amount_usd TEXT NOT NULL,         -- exact decimal: the worst-case cost
            expires REAL NOT NULL             -- unix seconds: a crashed instance's holds lapse
        );
        CREATE INDEX budget_holds_project ON budget_holds (project, month);
        """,
    ),
    (
        5,
        "quarantine: rows that could not be written, kept with the reason",
        """
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,                 -- when it was quarantined, UTC ISO 8601
            request_id TEXT,                  -- the request, when it could be read
            kind TEXT NOT NULL,               -- request | statements | journal
            reason TEXT NOT NULL,             -- the error that refused it
            content TEXT NOT NULL             -- the row, as escaped ASCII (repr)
        );
        """,
    ),
    (
        6,
        "totals: spend per day and dimension set, kept by a trigger in the rows' transaction",
        """
        CREATE TABLE totals_day (
            day TEXT NOT NULL,                -- UTC day of the rows' ts
            project TEXT NOT NULL,
            model TEXT NOT NULL,              -- model served, else requested; '' when neither
            provider TEXT NOT NULL,           -- '' when none
            tags TEXT NOT NULL,               -- the rows' tag set, JSON as stored
            requests INTEGER NOT NULL,
            errors INTEGER NOT NULL,          -- status >= 400
            priced INTEGER NOT NULL,          -- rows with a cost
            unpriced INTEGER NOT NULL,        -- usage without a price
            unmetered INTEGER NOT NULL,       -- no usage, no cost
            input_tokens INTEGER NOT NULL,
            cached_input_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost_micros INTEGER NOT NULL,     -- whole micro-dollars
            cost_atto INTEGER NOT NULL,       -- and 10^-18 dollars, < 10^12
            cost_quecto INTEGER NOT NULL,     -- and 10^-30 dollars, < 10^12
            cost_places INTEGER NOT NULL,     -- most decimals of a summed cost
            PRIMARY KEY (day, project, model, provider, tags)
        ) WITHOUT ROWID;          -- stored in key order: a range of days is read in one sweep
        CREATE INDEX totals_day_project ON totals_day (project, day);
        CREATE TABLE totals_month (
            month TEXT NOT NULL,              -- UTC month of the rows' ts: 2026-12
            project TEXT NOT NULL,
            model TEXT NOT NULL,              -- model served, else requested; '' when neither
            provider TEXT NOT NULL,           -- '' when none
            tags TEXT NOT NULL,               -- the rows' tag set, JSON as stored
            requests INTEGER NOT NULL,
            errors INTEGER NOT NULL,          -- status >= 400
            priced INTEGER NOT NULL,          -- rows with a cost
            unpriced INTEGER NOT NULL,        -- usage without a price
            unmetered INTEGER NOT NULL,       -- no usage, no cost
            input_tokens INTEGER NOT NULL,
            cached_input_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost_micros INTEGER NOT NULL,     -- whole micro-dollars
            cost_atto INTEGER NOT NULL,       -- and 10^-18 dollars, < 10^12
            cost_quecto INTEGER NOT NULL,     -- and 10^-30 dollars, < 10^12
            cost_places INTEGER NOT NULL,     -- most decimals of a summed cost
            PRIMARY KEY (month, project, model, provider, tags)
        ) WITHOUT ROWID;
        CREATE INDEX totals_month_project ON totals_month (project, month);
        CREATE TABLE derived_tables (
            name TEXT PRIMARY KEY,
            state TEXT NOT NULL,              -- current | behind (rows it doesn't count)
            rows_from TEXT,                   -- retention: raw rows kept from this UTC day on
            changed_at TEXT NOT NULL
        );
        INSERT INTO derived_tables (name, state, rows_from, changed_at)
            SELECT 'totals_day',
                   CASE WHEN EXISTS (SELECT 1 FROM requests) THEN 'behind' ELSE 'current' END,
                   NULL, 'migration 6';
        CREATE INDEX requests_unpriced ON requests (ts)
            WHERE price_source IN ('unpriced', 'odd-usage');
        """,
    ),
    (
        7,
        "git context: the calling process's repository, branch, HEAD and dirty flag",
        """
        ALTER TABLE requests ADD COLUMN git_repo TEXT;       -- hash of the root commit
        ALTER TABLE requests ADD COLUMN git_branch TEXT;     -- NULL: detached HEAD
        ALTER TABLE requests ADD COLUMN git_head TEXT;       -- HEAD commit at call time
        ALTER TABLE requests ADD COLUMN git_dirty INTEGER;   -- 1: uncommitted changes; NULL: unknown
        CREATE INDEX requests_git ON requests (git_repo, git_branch, git_head);
        """,
    ),
    (9, "fusion: every call a fused request made, beside its one row", fusion.MIGRATION),
]

# What a migration needs that each engine spells its own way (triggers), run after its DDL.
DIALECT_SQL: dict[int, dict[str, str]] = {
    6: {"sqlite": trigger_sql(False, V6_DIMENSIONS), "postgres": trigger_sql(True, V6_DIMENSIONS)},
}


def migrate(conn: Any) -> int:
    """Apply the migrations this database lacks; return the schema version.

    ``conn``: a sqlite3 connection or a :class:`~tollhouse.ledger.postgres.PgConnection`.
    """
    postgres = getattr(conn, "dialect", "sqlite") == "postgres"
    if postgres:
        # Two instances starting at once: one migrates, the other waits, then sees it done.
        conn.execute("SELECT pg_advisory_lock(7471)")
    try:
        return _apply(conn, postgres)
    finally:
        if postgres:
            conn.execute("SELECT pg_advisory_unlock(7471)")


def _apply(conn: Any, postgres: bool) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        # One script, one transaction: the schema change and its record land together.
        quoted = name.replace("'", "''")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        record = f"INSERT INTO schema_migrations VALUES ({version}, '{quoted}', '{now}');"
        extra = DIALECT_SQL.get(version, {}).get("postgres" if postgres else "sqlite", "")
        if postgres:
            conn.script(f"BEGIN;\n{translate_ddl(sql)}\n{extra}\n{record}\nCOMMIT;")
        else:
            conn.executescript(f"BEGIN;\n{sql}\n{extra}\n{record}\nCOMMIT;")
    return max((v for v, _, _ in MIGRATIONS), default=0)
