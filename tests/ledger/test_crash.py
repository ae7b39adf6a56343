"""Nothing acknowledged is lost: ``kill -9`` under load, restart, every answered request
has its ledger row (SQLite and Postgres).

The gateway runs as a child process (``tollhouse serve``); eight client
threads drive it with the openai SDK, streams and bodies mixed, recording the
request id of every 2xx response they received completely. The kill comes
after a random number of such responses, while the others are mid-flight.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

import openai

from tests.conftest import KEY_ENV, PROVIDER_KEY
from tollhouse.ledger.store import connect
from tollhouse.simulator import Simulator
from tollhouse.testing import GatewayProcess

REQUEST_ID = "x-tollhouse-request-id"


def write_config(tmp_path: Path, sim_url: str, ledger: dict[str, Any]) -> Path:
    lines = [
        "[ledger]",
        *(f'{k} = "{v}"' for k, v in ledger.items()),
        f'journal_dir = "{tmp_path / "journal"}"',
        "[[providers]]",
        'name = "openai"',
        'kind = "openai"',
        f'base_url = "{sim_url}/openai/v1"',
        f'api_key_env = "{KEY_ENV}"',
    ]
    path = tmp_path / "tollhouse.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Load:
    """Client threads that remember which responses they got whole."""

    def __init__(self, url: str, threads: int = 8) -> None:
        self.client = openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0)
        self.acknowledged: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def wait_for(self, n: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.acknowledged) >= n, timeout=120)

    def join(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                request_id = self._stream() if (n + i) % 2 else self._body()
            except (openai.APIError, OSError):
                self.failed += 1
                continue
            with self._cond:
                self.acknowledged.append(request_id)
                self._cond.notify_all()

    def _body(self) -> str:
        raw = self.client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        raw.parse()
        return raw.headers[REQUEST_ID]

    def _stream(self) -> str:
        with self.client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        ) as response:
            for _ in response.parse():  # to the end: [DONE]
                pass
            return response.headers[REQUEST_ID]


def ledger_ids(location: Any) -> set[str]:
    conn = connect(location)
    try:
        orphans = conn.execute(
            "SELECT count(*) FROM attempts "
            "WHERE request_id NOT IN (SELECT request_id FROM requests)"
        ).fetchone()[0]
        assert orphans == 0
        return {row[0] for row in conn.execute("SELECT request_id FROM requests").fetchall()}
    finally:
        conn.close()


def crash_and_restart(config: Path) -> tuple[list[str], int]:
    env = {KEY_ENV: PROVIDER_KEY}
    with GatewayProcess(config, env=env) as gw:
        load = Load(gw.url).start()
        try:
            load.wait_for(random.randint(40, 160))  # a random moment, under load
            assert gw.kill() == -9
        finally:
            load.join()
    with GatewayProcess(config, env=env) as again:  # replays the journal on start
        assert again.stop() == 0
    return load.acknowledged, load.failed


def test_kill_9_loses_no_acknowledged_row_sqlite(tmp_path: Path, simulator: Simulator) -> None:
    ledger = tmp_path / "ledger.db"
    config = write_config(tmp_path, simulator.url, {"path": ledger})
    acknowledged, _ = crash_and_restart(config)
    missing = set(acknowledged) - ledger_ids(ledger)
    assert not missing, f"{len(missing)} of {len(acknowledged)} answered requests have no row"
    assert len(acknowledged) >= 40
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not list((tmp_path / "journal").glob("*.jsonl")), "replayed segments are deleted"


def test_kill_9_loses_no_acknowledged_row_postgres(
    tmp_path: Path, simulator: Simulator, postgres_url: str
) -> None:
    config = write_config(tmp_path, simulator.url, {"url": postgres_url})
    acknowledged, _ = crash_and_restart(config)
    missing = set(acknowledged) - ledger_ids(postgres_url)
    assert not missing, f"{len(missing)} of {len(acknowledged)} answered requests have no row"
    assert len(acknowledged) >= 40
