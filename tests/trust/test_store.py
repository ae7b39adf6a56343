"""The in-process store: one winner among concurrent claims, retention, writes queued."""

from __future__ import annotations

import asyncio
from typing import Any

from tollhouse.trust.idempotency import ActionRecord, Claim
from tollhouse.trust.store import LedgerTrustStore


class FakeWriter:
    """Commits 'later': the done callback runs from another thread, like the real one."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, items: list[tuple[str, tuple[Any, ...]]], done: Any = None) -> None:
        self.statements.extend(items)
        if done is not None:
            import threading

            threading.Thread(target=done, args=(True,)).start()


def store(writer: FakeWriter) -> LedgerTrustStore:
    return LedgerTrustStore(
        writer,  # type: ignore[arg-type]
        retention_s=100,
        key_retention_s=100,
        cache_entries=10,
    )


def test_fifty_concurrent_claims_have_exactly_one_winner() -> None:
    writer = FakeWriter()
    s = store(writer)

    async def race() -> list[Claim]:
        claims = [
            s.claim(ActionRecord(f"a{n}", "acme", "key", "fp", "t", "pay", True)) for n in range(50)
        ]
        return [outcome for outcome, _ in await asyncio.gather(*claims)]

    outcomes = asyncio.run(race())
    assert outcomes.count(Claim.CLAIMED) == 1 and outcomes.count(Claim.IN_FLIGHT) == 49
    inserts = [sql for sql, _ in writer.statements if sql.startswith("INSERT INTO trust_actions")]
    assert len(inserts) == 1


def test_prune_forgets_old_trajectories_and_keys() -> None:
    s = store(FakeWriter())

    async def fill() -> None:
        await s.record_step("old", "1", degraded_because=None, inputs=None, request_id="r")
        await s.claim(ActionRecord("a1", "acme", "key", "fp"))

    asyncio.run(fill())
    s.tasks["old"].updated -= 1000
    s.claims.by_id["a1"].created -= 1000
    s.prune(s.tasks["old"].updated + 1001)
    assert s.tasks == {} and s.claims.by_id == {} and s.claims.by_key == {}
