"""A fused request's row: the sum of its calls, each beside it; journaled too."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from tests.ledger.test_writer import entry
from tollhouse.ledger.entry import LedgerEntry
from tollhouse.ledger.fusion import UnderlyingCall, fuse
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Pricer


def fused_entry(n: int) -> LedgerEntry:
    writer_answer = entry(
        n,
        provider="anthropic",
        pricing_provider="anthropic",
        model_requested="council",
        model_served="claude-sonnet-4-5",
        usage=Usage(input_tokens=3000, output_tokens=200),
        trust="full",
    )
    calls = [
        UnderlyingCall("panel", "openai", "gpt-4o-mini", 200, "openai", Usage(1000, 0, 0, 0, 100)),
        UnderlyingCall("panel", "gemini", "gemini-2.5-flash", 503, "google", error="HTTP 503"),
        UnderlyingCall("judge", "openai", "gpt-4o", 200, "openai", Usage(2000, 0, 0, 0, 100)),
    ]
    return fuse(writer_answer, calls, degraded=True)


def test_the_row_is_the_sum_of_its_calls(tmp_path: Path) -> None:
    pricer = Pricer({})
    writer = LedgerWriter(tmp_path / "l.db", pricer).start()
    fused = fused_entry(1)
    assert (fused.provider, fused.model_served, fused.trust) == ("fusion", "council", "degraded")
    cost = writer.submit(fused)
    singles = [
        writer.submit(entry(10 + i, provider=p, pricing_provider=pp, model_served=m, usage=u))
        for i, (p, pp, m, u) in enumerate(
            [
                ("openai", "openai", "gpt-4o-mini", Usage(1000, 0, 0, 0, 100)),
                ("openai", "openai", "gpt-4o", Usage(2000, 0, 0, 0, 100)),
                ("anthropic", "anthropic", "claude-sonnet-4-5", Usage(3000, 0, 0, 0, 200)),
            ]
        )
    ]
    assert writer.flush()
    assert cost.source == "fusion" and cost.usd == sum(s.usd or 0 for s in singles) > 0
    conn = sqlite3.connect(tmp_path / "l.db")
    row = conn.execute(
        "SELECT cost_usd, input_tokens, output_tokens FROM requests WHERE request_id = 'req-1'"
    ).fetchone()
    assert (Decimal(row[0]), row[1], row[2]) == (cost.usd, 6000, 400)
    made = conn.execute(
        "SELECT n, role, model, status, cost_usd, price_source FROM fusion_calls ORDER BY n"
    ).fetchall()
    assert [(n, role, model, status) for n, role, model, status, _, _ in made] == [
        (1, "panel", "gpt-4o-mini", 200),
        (2, "panel", "gemini-2.5-flash", 503),
        (3, "judge", "gpt-4o", 200),
        (4, "writer", "claude-sonnet-4-5", 200),
    ]
    assert made[1][4:] == ("0", "error")
    assert sum(Decimal(c[4]) for c in made) == cost.usd
    writer.close()


def test_a_replayed_fused_row_is_priced_as_its_sum(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    writer = LedgerWriter(tmp_path / "l.db", Pricer({}), journal=journal).start()
    expected = writer.submit(fused_entry(2))  # the same calls, priced as they come
    assert writer.seal(fused_entry(3)) is not None  # answered, then the process died
    assert writer.journal is not None
    writer.journal.close(delete=False)
    writer.close()
    again = LedgerWriter(tmp_path / "l.db", Pricer({}), journal=journal).start()
    again.close()
    conn = sqlite3.connect(tmp_path / "l.db")
    replayed = conn.execute(
        "SELECT cost_usd, price_source, provider FROM requests WHERE request_id = 'req-3'"
    ).fetchone()
    assert (Decimal(replayed[0]), replayed[1], replayed[2]) == (expected.usd, "fusion", "fusion")
