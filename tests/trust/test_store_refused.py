"""A claim or outcome whose ledger row is refused: quarantined, undone, retried (issue 12).

The real writer on a real ledger (SQLite and Postgres): a row the database
refuses even after normalising (here: an action id already in the ledger)
is retried alone, quarantined with its reason, and its claim is undone — a
503 the agent may retry, never a key stuck "in flight" — while the other
claims committed in the same batch stand.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tollhouse.errors import GatewayError
from tollhouse.ledger.store import Location, connect
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.pricing import Pricer
from tollhouse.trust.audit import action_row
from tollhouse.trust.idempotency import ActionRecord, Claim
from tollhouse.trust.store import LedgerTrustStore, NotRecorded


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return tmp_path / "ledger.db"


def record(action_id: str, project: str, key: str = "k") -> ActionRecord:
    return ActionRecord(action_id, project, key, "fp", "t", "pay", True)


def count(location: Location, sql: str) -> int:
    conn = connect(location, readonly=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_a_refused_claim_is_undone_and_the_others_in_its_batch_stand(ledger: Location) -> None:
    writer = LedgerWriter(ledger, Pricer({})).start()
    try:
        writer.execute([action_row(record("act_taken", "old"))])
        assert writer.flush()
        store = LedgerTrustStore(writer, retention_s=100, key_retention_s=100, cache_entries=10)

        async def batch() -> list[Any]:
            claims = [store.claim(record(f"act_{n}", f"p{n}")) for n in range(8)]
            claims.insert(4, store.claim(record("act_taken", "acme")))  # its row is refused
            return await asyncio.gather(*claims, return_exceptions=True)

        answers = asyncio.run(batch())
        refused = answers.pop(4)
        assert isinstance(refused, NotRecorded) and isinstance(refused, GatewayError)
        assert refused.status == 503 and "retry" in refused.message
        assert [outcome for outcome, _ in answers] == [Claim.CLAIMED] * 8

        async def retried() -> tuple[Claim, Any]:  # the key is free again, not stuck in flight
            return await store.claim(record("act_new", "acme"))

        assert asyncio.run(retried())[0] is Claim.CLAIMED
        assert writer.flush()
        assert count(ledger, "SELECT COUNT(*) FROM trust_actions") == 10
        assert count(ledger, "SELECT COUNT(*) FROM quarantine WHERE kind = 'statements'") == 1
        assert writer.quarantined == 1
    finally:
        writer.close()
