"""Actions belong to the project that claimed them, expire the same way on every store, and
one odd action row never costs other projects' claims (issues 12, 13).

Each test runs on the stores a gateway can have: in memory with a SQLite
ledger, in memory with a Postgres ledger, and Redis (shared).

A name with bytes that were never UTF-8 (a lone surrogate, as a JSON escape
or a header decodes to) or a NUL (Postgres refuses it) used to fail the
ledger's trust batch: the claim answered 500 and its key stayed "in flight"
(409) for good.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest

from tests.cluster.conftest import prefix, state_config  # noqa: F401  (the Redis key prefix)
from tests.conftest import KEY_ENV, PROVIDER_KEY, Harness
from tests.trust.test_trust_e2e import action, api, trust_config
from tollhouse.app import create_app
from tollhouse.ledger.store import connect
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


# Odd but decodable (a body with a lone surrogate is a 400 at the edge: tests/ingress).
ODD = ["refund \u202e\ufeff", "refund \x00 nul", "refund \ud800\udfff", "\x1b[31mred"]


def claim(gateway: Harness, key: str | bytes, project: str, name: str) -> httpx.Response:
    body = {"task": "pay", "name": name, "payload": {"n": 1}, "irreversible": False}
    return httpx.post(
        f"{gateway.url}/tollhouse/v1/actions",
        content=json.dumps(body).encode(),  # ensure_ascii: lone surrogates as \\u escapes
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Tollhouse-Project": project,
        },
        timeout=30,
    )


def rows(gateway: Harness, ledger: Any) -> list[dict[str, Any]]:
    gateway.settle()
    conn = connect(ledger, readonly=True)
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute("SELECT project, idem_key, name, status FROM trust_actions").fetchall()
        return [dict(r) for r in found]
    finally:
        conn.close()


@pytest.mark.parametrize("start", ["sqlite", "postgres"], indirect=True)
def test_an_odd_trust_row_never_fails_other_projects_claims(start: Any) -> None:
    gw = start()

    def one(i: int) -> tuple[int, int]:
        odd = i % 5 == 0
        name = ODD[i // 5 % len(ODD)] if odd else f"charge {i}"
        return i, claim(gw, f"k{i}", f"p{i % 7}", name).status_code

    with ThreadPoolExecutor(12) as pool:
        answers = dict(pool.map(one, range(60)))
    assert set(answers.values()) == {201}, answers  # the odd ones too: their names normalised
    again = {i: claim(gw, f"k{i}", f"p{i % 7}", "x").status_code for i in range(0, 60, 5)}
    assert set(again.values()) == {422}  # claimed (another payload), never stuck in flight
    for i in range(60):  # each claim reports, and replays, as its own project
        name = ODD[i // 5 % len(ODD)] if i % 5 == 0 else f"charge {i}"
        first = claim(gw, f"k{i}", f"p{i % 7}", name)
        assert first.status_code == 409  # in flight: the same action, not a stuck error
        act = first.json()["error"]["message"].split("(")[1].split(")")[0]
        done = api(
            gw,
            "PUT",
            f"/actions/{act}",
            content=json.dumps({"status": "succeeded", "result": {"note": "\u202e\x00"}}),
            headers={"X-Tollhouse-Project": f"p{i % 7}", "Content-Type": "application/json"},
        )
        assert done.status_code == 200, done.text
        assert claim(gw, f"k{i}", f"p{i % 7}", name).status_code == 200
    stored = rows(gw, _ledger(gw))
    assert len(stored) == 60 and {r["status"] for r in stored} == {"succeeded"}
    assert all("\x00" not in r["name"] for r in stored)


@pytest.mark.parametrize("start", ["sqlite", "postgres"], indirect=True)
def test_an_idempotency_key_that_is_not_text_is_refused_with_the_fix(start: Any) -> None:
    gw = start()
    refused = claim(gw, b"k\xff\xfe", "acme", "charge")
    assert refused.status_code == 400 and "Idempotency-Key" in refused.json()["error"]["message"]
    assert claim(gw, "k-ok", "acme", "charge").status_code == 201


def _ledger(gateway: Harness) -> Any:
    from tollhouse.trust import http as trust_http

    assert gateway.server.app is not None
    return gateway.server.app[trust_http.LEDGER_PATH]


@pytest.mark.parametrize("start", ["postgres"], indirect=True)
def test_claims_ride_out_lost_postgres_connections(start: Any) -> None:
    """The ledger's connections killed under concurrent gate and action traffic: every
    claim is committed once (the writer reconnects and retries), none answers 500."""
    import psycopg

    gw = start()
    url = _ledger(gw)
    stop = threading.Event()

    def kill_connections() -> int:
        killed = 0
        with psycopg.connect(url, autocommit=True) as admin:
            while not stop.is_set() and killed < 200:
                found = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                killed += len(found)
                stop.wait(0.05)
        return killed

    def one(i: int) -> tuple[int, int]:
        if i % 3 == 0:
            body = {"task": "t", "action": "look", "irreversible": True}
            headers = {"X-Tollhouse-Project": f"p{i % 4}"}
            return i, api(gw, "POST", "/gate", json=body, headers=headers).status_code
        return i, claim(gw, f"k{i}", f"p{i % 4}", f"charge {i}").status_code

    with ThreadPoolExecutor(9) as pool:
        killer = pool.submit(kill_connections)
        answers = dict(pool.map(one, range(60)))
        stop.set()
        assert killer.result() > 0  # connections were lost while traffic ran
    assert set(answers.values()) == {200, 201}, answers
    stored = rows(gw, url)
    assert sorted(r["idem_key"] for r in stored) == sorted(f"k{i}" for i in range(60) if i % 3)
    for i in (1, 2, 4):  # each claim stands: the same key again is in flight, not a new 201
        assert claim(gw, f"k{i}", f"p{i % 4}", f"charge {i}").status_code == 409
