"""Actions belong to the project that claimed them, and expire the same way on every store.

Each test runs on the three stores a gateway can have: in memory with a
SQLite ledger, in memory with a Postgres ledger, and Redis (shared).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import KEY_ENV, PROVIDER_KEY, Harness
from tests.state.conftest import prefix, state_config  # noqa: F401  (the Redis key prefix)
from tests.trust.test_trust_e2e import action, api, trust_config
from tollhouse.app import create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

BACKENDS = ("sqlite", "postgres", "redis")


@pytest.fixture
def start(
    request: pytest.FixtureRequest,
    simulator: Simulator,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """Start a gateway on the store the test is parametrised with, with trust settings."""
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    backend: str = request.param
    servers: list[BackgroundServer] = []

    def make(**trust: Any) -> Harness:
        config = trust_config(simulator.url, **trust)
        ledger: Any = tmp_path / "ledger.db"
        if backend == "postgres":
            ledger = request.getfixturevalue("postgres_url")
        elif backend == "redis":
            key_prefix = request.getfixturevalue("prefix")
            config["state"] = state_config(simulator.url, key_prefix)["state"]
        settings = parse_settings(config)
        server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()
        servers.append(server)
        return Harness(server, tmp_path / "ledger.db", settings)

    yield make
    for server in servers:
        server.stop()


def report(gateway: Harness, action_id: str, project: str, status: str) -> httpx.Response:
    headers = {"X-Tollhouse-Project": project}
    return api(gateway, "PUT", f"/actions/{action_id}", json={"status": status}, headers=headers)


@pytest.mark.parametrize("start", BACKENDS, indirect=True)
def test_another_project_can_not_report_an_action(start: Any) -> None:
    gw = start()
    claimed = action(gw, "pay-1", project="acme")
    assert claimed.status_code == 201
    act = claimed.json()["id"]
    for status in ("succeeded", "abandoned"):
        other = report(gw, act, "globex", status)
        assert other.status_code == 404  # as for an id that doesn't exist: nothing to probe
        assert "report it as the project that claimed it" in other.json()["error"]["message"]
    assert action(gw, "pay-1", project="acme").status_code == 409  # still acme's, in flight
    assert report(gw, "act_" + "0" * 24, "acme", "succeeded").status_code == 404
    assert report(gw, act, "acme", "succeeded").status_code == 200
    assert report(gw, act, "globex", "failed").status_code == 404  # not a 409 that tells
    replay = action(gw, "pay-1", project="acme")
    assert (replay.status_code, replay.json()["status"]) == (200, "succeeded")


@pytest.mark.parametrize("start", BACKENDS, indirect=True)
def test_an_expired_claim_is_unknown_on_every_store(start: Any) -> None:
    gw = start(idempotency_retention_s=1.0)
    first = action(gw, "late", project="acme")
    done = action(gw, "done", project="acme")
    assert first.status_code == done.status_code == 201
    assert report(gw, done.json()["id"], "acme", "succeeded").status_code == 200
    time.sleep(1.5)  # past the retention (Redis expires its keys by its own clock)
    late = report(gw, first.json()["id"], "acme", "succeeded")
    assert late.status_code == 404 and "older than the key retention" in late.text
    again = action(gw, "done", project="acme")
    assert again.status_code == 201 and again.json()["id"] != done.json()["id"]  # a new claim
