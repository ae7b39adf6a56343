"""Cached answers are kept in memory (or Redis), never in the ledger (issue 12: data at rest).

A hit proves the entry exists; the ledger's files (database, WAL, journal)
must still not contain a byte of the answer, and a ledger an earlier version
filled with cached bodies is emptied at start (the bytes may stay in the
file's free pages until a VACUUM).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import GatewayFactory, Harness
from tests.trust.test_trust_e2e import cached, table, trust_config
from tollhouse.ledger.store import connect
from tollhouse.simulator import Simulator


def files_of(ledger: Path) -> bytes:
    """Every byte the ledger keeps on disk: the database, its WAL, its journal."""
    found = b""
    for path in sorted(ledger.parent.rglob(f"{ledger.name}*")):
        if path.is_file():
            found += path.read_bytes()
    return found


@pytest.fixture
def gw_cache(make_gateway: GatewayFactory, simulator: Simulator) -> Harness:
    return make_gateway(trust_config(simulator.url, cache_max_entries=2))


def test_a_cached_answer_never_reaches_the_ledger(gw_cache: Harness) -> None:
    first = cached(gw_cache, "commit-a", "a question worth caching")
    answer = first.parse().choices[0].message.content
    assert len(answer) >= 16
    hit = cached(gw_cache, "commit-a", "a question worth caching")
    assert hit.headers["x-tollhouse-cache"] == "hit"  # it is cached: in memory
    assert table(gw_cache, "trust_cache") == []
    assert answer.encode() not in files_of(gw_cache.ledger_path)
    for n in range(2):  # at most cache_max_entries (2), the least recently used go first
        cached(gw_cache, None, f"filler {n}")
    again = cached(gw_cache, "commit-a", "a question worth caching")
    assert again.headers["x-tollhouse-cache"] == "miss"  # evicted by the bound


def test_bodies_an_earlier_version_kept_are_deleted_at_start(
    make_gateway: GatewayFactory, simulator: Simulator, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger-0.db"  # where make_gateway's first gateway keeps its ledger
    conn = connect(ledger)
    conn.execute(
        "INSERT INTO trust_cache (ts, cache_key, assumes, body, content_type, served_by, "
        "created, expires) VALUES ('2026-01-01', 'k', NULL, 'SECRET ANSWER', "
        "'application/json', 'openai/gpt-4o-mini', 0, 9e12)"
    )
    conn.commit()
    conn.close()
    gw = make_gateway(trust_config(simulator.url))
    assert table(gw, "trust_cache") == []
