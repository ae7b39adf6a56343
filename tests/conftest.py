"""Shared fixtures: one provider simulator per session, a fresh gateway per test.

Everything runs on ephemeral loopback ports; the SDKs talk real HTTP to the
gateway, which talks real HTTP to the simulator.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tollhouse.app import GATEWAY, create_app
from tollhouse.settings import Settings, parse_settings
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import BackgroundServer

# One fixed hypothesis profile everywhere (CI and local alike): derandomised, so a run
# finds the same things every time, and bounded, so the whole suite stays within minutes.
# A test that wants more examples says so with its own @settings(max_examples=...).
settings.register_profile(
    "tollhouse",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("tollhouse")

KEY_ENV = "TOLLHOUSE_TEST_PROVIDER_KEY"
PROVIDER_KEY = "sk-test-provider-key-7f3a9c"
ACME_KEY = "th-acme-test"


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    bill = tmp_path_factory.mktemp("simulator") / "bill.jsonl"
    with Simulator(SimulatorSettings(bill_path=bill)) as sim:
        yield sim


@pytest.fixture
def faults(simulator: Simulator) -> Iterator[Simulator]:
    """The shared simulator, for a test that programs faults: they are cleared after it."""
    yield simulator
    request = urllib.request.Request(simulator.url + "/_sim/faults", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()


def base_config(sim_url: str) -> dict[str, Any]:
    def provider(name: str, kind: str, path: str) -> dict[str, str]:
        return {"name": name, "kind": kind, "base_url": sim_url + path, "api_key_env": KEY_ENV}

    return {
        "providers": [
            provider("openai", "openai", "/openai/v1"),
            provider("anthropic", "anthropic", "/anthropic"),
            provider("gemini", "gemini", "/gemini"),
            provider("xai", "xai", "/xai/v1"),
            provider("openrouter", "openrouter", "/openrouter/v1"),
            {"name": "local", "kind": "openai-compatible", "base_url": sim_url + "/compat/v1"},
        ],
        "projects": {"acme": {"keys": [ACME_KEY]}},
    }


@dataclass
class Harness:
    """A running gateway plus direct access to its ledger."""

    server: BackgroundServer
    ledger_path: Path
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url

    def settle(self) -> None:
        assert self.server.app is not None
        self.server.call(self.server.app[GATEWAY].settle())

    def rows(self) -> list[dict[str, Any]]:
        self.settle()
        conn = sqlite3.connect(self.ledger_path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY id")]
        finally:
            conn.close()

    def row(self, request_id: str) -> dict[str, Any]:
        found = [r for r in self.rows() if r["request_id"] == request_id]
        assert len(found) == 1, f"expected one ledger row for {request_id}, got {len(found)}"
        return found[0]

    def last(self) -> dict[str, Any]:
        rows = self.rows()
        assert rows, "the ledger is empty"
        return rows[-1]


GatewayFactory = Callable[..., Harness]


@pytest.fixture
def make_gateway(
    tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GatewayFactory]:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    started: list[BackgroundServer] = []

    def make(config: dict[str, Any] | None = None, **server: Any) -> Harness:
        data = config if config is not None else base_config(simulator.url)
        if server:
            data = {**data, "server": {**data.get("server", {}), **server}}
        settings = parse_settings(data)
        ledger = tmp_path / f"ledger-{len(started)}.db"
        srv = BackgroundServer(
            lambda: create_app(settings, ledger_path=ledger), handler_cancellation=True
        ).start()
        started.append(srv)
        return Harness(srv, ledger, settings)

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> Harness:
    return make_gateway()


def bill_for(sim: Simulator, upstream_id: str) -> dict[str, Any]:
    found = [b for b in sim.bills() if b.get("id") == upstream_id]
    assert len(found) == 1, f"expected one bill line for {upstream_id}, got {len(found)}"
    return found[0]


TOKEN_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def assert_matches_bill(row: dict[str, Any], bill: dict[str, Any]) -> None:
    """The ledger row's tokens and cost equal what the simulator billed, exactly."""
    for column in TOKEN_COLUMNS:
        assert row[column] == bill["usage"][column], (column, row, bill)
    assert row["cost_usd"] == bill["cost_usd"] or (
        row["cost_usd"] is not None
        and bill["cost_usd"] is not None
        and _dec(row["cost_usd"]) == _dec(bill["cost_usd"])
    ), (row["cost_usd"], bill["cost_usd"])


def _dec(value: str) -> Any:
    from decimal import Decimal

    return Decimal(value)


def usage_raw(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["usage_raw"]) if row["usage_raw"] else {}


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg_missing() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"Postgres at 127.0.0.1:5432 doesn't answer ({str(exc).strip()[:80]})"
    return None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway Postgres database for one test, dropped after it.

    Skipped when Postgres isn't reachable, except under CI=true, where it fails:
    scripts/check-postgres starts it first.
    """
    import os
    import secrets

    missing = _pg_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}; CI must run the Postgres tests (scripts/check-postgres)")
        pytest.skip(missing)
    import psycopg

    name = f"tollhouse_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
