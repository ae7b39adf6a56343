"""A gateway with its dashboard over a seeded ledger, and a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY_ENV, PROVIDER_KEY, base_config
from tollhouse.app import create_app
from tollhouse.ledger.entry import LedgerEntry
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Pricer
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer
from tollhouse.wiring import DASHBOARD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM = os.environ.get("TOLLHOUSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_PROJECT = "<img src=x onerror=alert(1)>"
XSS_TAG = "<script>alert(2)</script>"
PRICES = {
    "openai/gpt-4o-mini": {"input": 1, "output": 2},
    "anthropic/claude-sonnet-4-5": {"input": 3, "output": 15},
}


def seed_entries(now: datetime) -> list[LedgerEntry]:
    """Five days of traffic: three projects, two priced models, one unpriced, tags, a fallback."""
    out = []

    def add(days: int, project: str, provider: str, model: str, **kw: Any) -> None:
        n = len(out)
        usage = kw.pop("usage", Usage(input_tokens=1000, output_tokens=500))
        out.append(
            LedgerEntry(
                ts=now - timedelta(days=days, minutes=n),
                request_id=f"seed-{n:03d}",
                project=project,
                attribution="header",
                dialect="openai-chat",
                status=kw.pop("status", 200),
                stream=False,
                latency_ms=420.0,
                provider=provider,
                pricing_provider=None,
                model_served=model,
                model_requested=model,
                usage=usage,
                trust=kw.pop("trust", "full"),
                **kw,
            )
        )

    for i in range(10):
        purpose = "bugfix" if i < 4 else "feature"
        add(i % 5, "acme", "openai", "gpt-4o-mini", tags={"purpose": purpose})
    for i in range(5):
        add(
            i,
            "globex",
            "anthropic",
            "claude-sonnet-4-5",
            trust="degraded" if i == 0 else "full",
            usage=Usage(input_tokens=2000, output_tokens=1000),
        )
    add(1, "initech", "local", "mystery-1")
    add(2, XSS_PROJECT, "openai", "gpt-4o-mini", tags={"purpose": XSS_TAG})
    return out


LOOKUP_MISS = "validity_miss"


def seed_trust(ledger: Path, now: datetime) -> None:
    """Two tasks over the seeded requests: globex's (its first step degraded) and acme's;
    one held and one fired irreversible action, four cache lookups, one divergence sample."""
    ts = now.isoformat(timespec="microseconds")
    steps = [
        ("t-globex", str(i), f"seed-{10 + i:03d}", "degraded" if i == 0 else "full")
        for i in range(5)
    ] + [("t-acme", str(i), f"seed-{i:03d}", "full") for i in range(10)]
    with sqlite3.connect(ledger) as conn:
        conn.executemany(
            "INSERT INTO trust_steps (ts, task, step, request_id, own) VALUES (?, ?, ?, ?, ?)",
            [(ts, *row) for row in steps],
        )
        conn.execute(
            "INSERT INTO trust_gate (ts, project, task, action, irreversible, allow, tainted_by)"
            " VALUES (?, 'globex', 't-globex', 'refund', 1, 0, '[\"0\"]')",
            (ts,),
        )
        conn.execute(
            "INSERT INTO trust_actions (action_id, ts, created, project, idem_key, fingerprint,"
            " task, name, irreversible, tainted, status) VALUES ('a1', ?, 0, 'acme', 'k1', 'f',"
            " 't-acme', 'deploy', 1, 0, 'succeeded')",
            (ts,),
        )
        conn.executemany(
            "INSERT INTO trust_cache_lookups (ts, request_id, outcome) VALUES (?, ?, ?)",
            [
                (ts, f"seed-00{i}", o)
                for i, o in enumerate(("hit", "miss", "miss", "validity_miss"))
            ],
        )
        conn.execute(
            "INSERT INTO trust_divergence (ts, request_id, kind, primary_model, other_model,"
            " similarity) VALUES (?, 'seed-010', 'fallback', 'claude-sonnet-4-5', 'gpt-4o-mini',"
            " 0.8)",
            (ts,),
        )


@dataclass
class Dash:
    server: BackgroundServer
    ledger: Path
    token: str
    token_file: Path

    @property
    def port(self) -> int:
        assert self.server.app is not None
        return self.server.app[DASHBOARD].port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/tollhouse/ui"

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.token}"


@pytest.fixture
def dash(tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dash]:
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    config = base_config(simulator.url)
    config["prices"] = PRICES
    token_file = tmp_path / "home" / "dashboard.token"
    config["dashboard"] = {"port": 0, "token_file": str(token_file)}
    config["projects"]["acme"].update(budget_daily_usd=0.001, budget_mode="soft")
    config["commitments"] = {"openai": {"discount": 0.1, "annual_usd": 1000, "start": "2026-01-01"}}
    settings = parse_settings(config)
    ledger = tmp_path / "ledger.db"
    writer = LedgerWriter(ledger, Pricer(settings.prices)).start()
    for entry in seed_entries(datetime.now(UTC)):
        writer.submit(entry)
    writer.flush()
    writer.close()
    seed_trust(ledger, datetime.now(UTC))
    server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger, dashboard=True))
    server.start()
    try:
        yield Dash(server, ledger, token_file.read_text().strip(), token_file)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the browser tests, never skip them
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page that records console errors, page errors and dialogs (XSS)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"pageerror: {e}"))
    pg.on("dialog", lambda d: (pg.problems.append(f"dialog: {d.message}"), d.dismiss()))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield pg
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
