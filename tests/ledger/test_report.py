"""Reports: grouping, filters, exact sums, the three formats."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.ledger.test_writer import entry
from tollhouse.ledger.report import ReportError, parse_by, parse_time, render, summarize
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Pricer
from tollhouse.settings import Price


@pytest.fixture
def ledger(tmp_path: Path) -> sqlite3.Connection:
    price = Price(input=Decimal("0.1"), output=Decimal("0.3"))  # exact, float-hostile
    writer = LedgerWriter(tmp_path / "l.db", Pricer({"openai/gpt-4o": price})).start()
    day1, day2 = datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 2, 9, tzinfo=UTC)
    usage = Usage(input_tokens=1, output_tokens=1)
    for n in range(10):
        writer.submit(entry(n, ts=day1, usage=usage, tags={"purpose": "feature"}))
    for n in range(10, 13):
        writer.submit(entry(n, ts=day2, project="globex", usage=usage, tags={"purpose": "bugfix"}))
    writer.submit(
        entry(
            13,
            ts=day2,
            project="globex",
            model_served="mystery",
            model_requested="mystery",
            usage=Usage(input_tokens=5, output_tokens=5),
        )
    )
    writer.flush()
    writer.close()
    return sqlite3.connect(tmp_path / "l.db")


def test_group_by_project_exact_sum(ledger: sqlite3.Connection) -> None:
    rows = summarize(ledger, ["project"])
    acme = next(r for r in rows if r["project"] == "acme")
    assert acme["requests"] == 10 and acme["input_tokens"] == 10
    assert acme["cost_usd"] == "0.0000040"  # 10 x 0.4e-6, exactly (floats give 3.9999e-06)
    globex = next(r for r in rows if r["project"] == "globex")
    assert globex["unpriced_requests"] == 1 and globex["requests"] == 4


def test_group_by_tag_and_day(ledger: sqlite3.Connection) -> None:
    rows = summarize(ledger, ["day", "tag:purpose"])
    keys = {(r["day"], r["tag:purpose"]): r["requests"] for r in rows}
    assert keys == {
        ("2026-11-01", "feature"): 10,
        ("2026-11-02", "bugfix"): 3,
        ("2026-11-02", "(none)"): 1,
    }


def test_since_until_and_project(ledger: sqlite3.Connection) -> None:
    since = parse_time("2026-11-02")
    assert sum(r["requests"] for r in summarize(ledger, ["project"], since=since)) == 4
    until = parse_time("2026-11-02")
    assert sum(r["requests"] for r in summarize(ledger, ["project"], until=until)) == 10
    assert summarize(ledger, ["model"], project="globex")[0]["requests"] in (1, 3)


def test_formats(ledger: sqlite3.Connection) -> None:
    rows = summarize(ledger, ["project", "model"])
    parsed = json.loads(render(rows, ["project", "model"], "json"))
    assert set(parsed[0]) >= {
        "project",
        "model",
        "requests",
        "input_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
        "unpriced_requests",
    }
    table = list(csv.DictReader(io.StringIO(render(rows, ["project", "model"], "csv"))))
    assert len(table) == len(rows)
    text = render(rows, ["project", "model"], "table")
    assert "acme" in text and "total" in text


def test_bad_options() -> None:
    with pytest.raises(ReportError, match="tag:NAME"):
        parse_by("project,colour")
    with pytest.raises(ReportError, match="7d"):
        parse_time("last tuesday")
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert parse_time("7d", now=now) == datetime(2026, 11, 15, tzinfo=UTC)
    with pytest.raises(ReportError, match="shorter time"):  # not an OverflowError: a 500
        parse_time("99999999d")
