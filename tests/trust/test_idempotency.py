"""Idempotency-Key claims: one winner, replay, mismatch, in flight, per project, retention."""

from __future__ import annotations

import pytest

from tollhouse.trust.idempotency import (
    ActionRecord,
    Claim,
    IdempotencyTable,
    fingerprint,
    parse_key,
)


def record(project: str, key: str, fp: str, n: int = 1) -> ActionRecord:
    return ActionRecord(f"a{n}", project, key, fp)


def claim(table: IdempotencyTable, project: str, key: str, fp: str, now: float = 0.0, n: int = 1):  # type: ignore[no-untyped-def]
    return table.claim(project, key, fp, now=now, make=lambda: record(project, key, fp, n))


def test_first_claim_wins_then_in_flight_then_replay() -> None:
    table = IdempotencyTable(retention_s=100)
    assert claim(table, "p", "k", "fp")[0] is Claim.CLAIMED
    outcome, found = claim(table, "p", "k", "fp", n=2)
    assert outcome is Claim.IN_FLIGHT and found is not None and found.id == "a1"
    table.complete("a1", "succeeded", {"id": 7}, now=1.0)
    outcome, found = claim(table, "p", "k", "fp", n=3)
    assert outcome is Claim.REPLAY and found is not None and found.result == {"id": 7}


def test_same_key_other_payload_is_a_mismatch() -> None:
    table = IdempotencyTable(retention_s=100)
    claim(table, "p", "k", "fp1")
    assert claim(table, "p", "k", "fp2")[0] is Claim.MISMATCH


def test_keys_are_scoped_per_project() -> None:
    table = IdempotencyTable(retention_s=100)
    assert claim(table, "acme", "k", "fp")[0] is Claim.CLAIMED
    assert claim(table, "globex", "k", "other", n=2)[0] is Claim.CLAIMED


def test_a_key_is_forgotten_after_its_retention() -> None:
    table = IdempotencyTable(retention_s=10)
    claim(table, "p", "k", "fp")
    table.complete("a1", "succeeded", None, now=1.0)
    assert claim(table, "p", "k", "other", now=11.0, n=2)[0] is Claim.CLAIMED


def test_abandoned_releases_the_key() -> None:
    table = IdempotencyTable(retention_s=100)
    claim(table, "p", "k", "fp")
    table.complete("a1", "abandoned", None, now=1.0)
    assert claim(table, "p", "k", "fp", n=2)[0] is Claim.CLAIMED


def test_an_outcome_is_reported_once() -> None:
    table = IdempotencyTable(retention_s=100)
    claim(table, "p", "k", "fp")
    table.complete("a1", "failed", {"error": "card declined"}, now=1.0)
    with pytest.raises(ValueError, match="already reported as failed"):
        table.complete("a1", "succeeded", None, now=2.0)


def test_fingerprint_covers_the_action_not_key_order() -> None:
    a = {"task": "t", "name": "pay", "payload": {"x": 1, "y": 2}, "irreversible": True}
    b = {"irreversible": True, "payload": {"y": 2, "x": 1}, "name": "pay", "task": "t"}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "payload": {"x": 2, "y": 2}})


def test_parse_key() -> None:
    assert parse_key('"abc"') == "abc"
    assert parse_key(" abc ") == "abc"
    assert parse_key('""') is None
    assert parse_key("x" * 256) is None
    assert parse_key(None) is None
