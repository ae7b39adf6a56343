"""The ledger on Postgres: same migrations, same writer, same report as SQLite.

The same SDK traffic (four dialects, streams, tags, a trust task, a cache hit,
an unpriced model, an error) goes through two gateways, one on a SQLite
ledger and one on a throwaway Postgres database; every report tollhouse has
(spend, capacity, trust, the dashboard's queries) must come out equal.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner
from google.genai import types

from tests.conftest import KEY_ENV, PROVIDER_KEY, base_config
from tests.test_metering_e2e import an, gm, oa
from tollhouse.app import GATEWAY, create_app
from tollhouse.cli.main import cli
from tollhouse.dashboard import queries
from tollhouse.ledger.migrations import MIGRATIONS, migrate
from tollhouse.ledger.report import capacity_summary, summarize
from tollhouse.ledger.store import Location, connect
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer
from tollhouse.trust.metrics import trust_metrics

CLAUDE = "claude-haiku-4-5"


class Gw:
    def __init__(self, url: str) -> None:
        self.url = url


def traffic(url: str, settle: Callable[[], None]) -> None:
    gw: Any = Gw(url)
    tag = {"X-Tollhouse-Tag-Purpose": "bugfix"}
    task = {"X-Tollhouse-Task": "t-1", **tag}
    msgs = [{"role": "user", "content": "hello there"}]
    client, gemini = oa(gw), gm(gw)
    client.chat.completions.create(model="gpt-4o-mini", messages=msgs, extra_headers=task)
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=msgs, stream=True, extra_headers=tag
    ):
        pass
    cached = {"X-Tollhouse-Cache": "use", "X-Tollhouse-Project": "globex"}
    for _ in range(2):  # a miss, then (once the answer is stored) a hit
        client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, temperature=0, extra_headers=cached
        )
        settle()
    claude = an(gw)
    claude.messages.create(model=CLAUDE, max_tokens=20, messages=msgs)
    with claude.messages.stream(model=CLAUDE, max_tokens=20, messages=msgs) as s:
        s.get_final_message()
    gemini.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello",
        # A header, not the calling process: a time-capped lookup may differ run to run.
        config=types.GenerateContentConfig(
            http_options=types.HttpOptions(headers={"X-Tollhouse-Project": "gemini-team"})
        ),
    )
    client.chat.completions.create(model="local/llama-4", messages=msgs)  # unpriced
    with pytest.raises(openai.BadRequestError):  # a gateway error, also a row
        client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, extra_headers={"X-Tollhouse-Deadline-Ms": "soon"}
        )


def run_gateway(config: dict[str, Any], ledger: Location) -> None:
    settings = parse_settings(config)
    server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()
    try:
        app = server.app
        assert app is not None
        traffic(server.url, lambda: server.call(app[GATEWAY].settle()))
        server.call(app[GATEWAY].settle())
    finally:
        server.stop()


def reports(location: Location) -> dict[str, Any]:
    conn = connect(location, readonly=True)
    conn.row_factory = sqlite3.Row
    try:
        capacity = capacity_summary(conn)
        for row in capacity:  # timings differ run to run; the counts must not
            row.pop("avg_queue_wait_ms"), row.pop("max_queue_wait_ms")
        recent = queries.recent(conn, {"tag": "purpose=bugfix"}, 50)
        return {
            "spend": summarize(conn, ["project", "model", "provider", "day", "tag:purpose"]),
            "capacity": capacity,
            "trust": trust_metrics(conn),
            "overview": queries.overview(conn, None, None),
            "unpriced": [
                {k: v for k, v in r.items() if k not in ("first", "last")}
                for r in queries.unpriced(conn, None, None)
            ],
            "tags": queries.tags(conn, "purpose", None, None),
            "recent": sorted((r["model"], r["status"], r["cost_usd"]) for r in recent),
            "project": {
                k: v
                for k, v in queries.project_report(conn, "globex", None, None).items()
                if k not in ("since", "until")
            },
        }
    finally:
        conn.close()


def test_report_on_postgres_equals_sqlite(
    tmp_path: Path, simulator: Simulator, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    config = base_config(simulator.url)
    run_gateway(config, tmp_path / "ledger.db")
    run_gateway(config, postgres_url)
    on_sqlite, on_postgres = reports(tmp_path / "ledger.db"), reports(postgres_url)
    assert on_sqlite["spend"], "traffic reached the ledger"
    assert on_sqlite["trust"]["cache_hits"] == 1 and on_sqlite["unpriced"]
    assert on_postgres == on_sqlite
    cli_reports = [
        CliRunner().invoke(
            cli, ["report", "--ledger", str(where), "--by", "project,model", "--format", "json"]
        )
        for where in (tmp_path / "ledger.db", postgres_url)
    ]
    assert all(r.exit_code == 0 for r in cli_reports), [r.output for r in cli_reports]
    assert json.loads(cli_reports[0].output) == json.loads(cli_reports[1].output) != []


def test_migrations_on_both(tmp_path: Path, postgres_url: str) -> None:
    latest = MIGRATIONS[-1][0]
    tables = {}
    for location, listing in (
        (tmp_path / "l.db", "SELECT name FROM sqlite_master WHERE type = 'table'"),
        (postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
    ):
        conn = connect(location)  # migrates
        try:
            assert migrate(conn) == latest  # again: nothing to do, no error
            versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            assert [v for (v,) in versions] == [v for v, _, _ in MIGRATIONS]
            tables[str(location)] = {name for (name,) in conn.execute(listing).fetchall()}
        finally:
            conn.close()
    assert tables[str(tmp_path / "l.db")] == tables[postgres_url]
    pg = connect(postgres_url)
    try:
        types_ = dict(
            pg.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'trust_actions'"
            ).fetchall()
        )
        assert types_["created"] == "double precision"  # REAL, 8 bytes: unix seconds
        assert types_["id"] == "bigint" and types_["irreversible"] == "bigint"
        identity = pg.execute(
            "SELECT is_identity FROM information_schema.columns "
            "WHERE table_name = 'requests' AND column_name = 'id'"
        ).fetchone()
        assert identity == ("YES",)
    finally:
        pg.close()
