"""A log line per request under ``serve -v``, and JSON logs (issue 23, item 5).

The formatting is tested directly; then ``tollhouse serve`` in a child process,
driven by the openai SDK, must log one line per request (answered or refused
by the gateway) with its project, model, status, tokens and cost, and never a key.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY
from tollhouse.ledger.entry import LedgerEntry
from tollhouse.metering.usage import Usage
from tollhouse.pricing import Cost
from tollhouse.requestlog import JSONFormatter, log_request
from tollhouse.simulator import Simulator
from tollhouse.testing import GatewayProcess


def _entry(**kw: object) -> LedgerEntry:
    base: dict[str, object] = {
        "ts": datetime.now(UTC),
        "request_id": "r1",
        "project": "acme",
        "attribution": "key",
        "dialect": "openai-chat",
        "status": 200,
        "stream": False,
        "latency_ms": 12.5,
        "provider": "openai",
        "model_requested": "gpt-4o-mini",
        "model_served": "gpt-4o-mini",
        "usage": Usage(input_tokens=12, output_tokens=40),
        "trust": "full",
    }
    base.update(kw)
    return LedgerEntry(**base)  # type: ignore[arg-type]


def test_the_line_says_who_what_and_how_much(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tollhouse.requests"):
        log_request(_entry(), Cost(Decimal("0.000026"), "genai-prices"))
        log_request(_entry(status=404, usage=None, error="gateway:not_found"), Cost(None, "x"))
    ok, bad = (r.getMessage() for r in caplog.records)
    assert ok == "req r1 acme openai/gpt-4o-mini 200 in=12 out=40 $0.000026 12ms full"
    assert "404" in bad and "unpriced" in bad and "error=gateway:not_found" in bad


def test_off_unless_asked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        log_request(_entry(), Cost(None, "unpriced"))
    assert caplog.records == []


def test_json_records_carry_the_fields() -> None:
    record = logging.LogRecord("tollhouse.requests", logging.INFO, "", 0, "req", (), None)
    record.request = {"project": "acme", "cost_usd": "0.1"}
    found = json.loads(JSONFormatter().format(record))
    assert found["project"] == "acme" and found["cost_usd"] == "0.1"
    assert found["level"] == "info" and found["logger"] == "tollhouse.requests"


def _config(tmp_path: Path, simulator: Simulator) -> Path:
    config = tmp_path / "tollhouse.toml"
    config.write_text(
        f'[ledger]\npath = "{tmp_path / "ledger.db"}"\n[dashboard]\nenabled = false\n'
        f'[projects.acme]\nkeys = ["{ACME_KEY}"]\n'
        '[[providers]]\nname = "openai"\nkind = "openai"\n'
        f'base_url = "{simulator.url}/openai/v1"\napi_key_env = "{KEY_ENV}"\n'
    )
    return config


def _calls(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key=ACME_KEY, max_retries=0)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages="not a list")  # type: ignore[arg-type]


def test_serve_v_json_logs_each_request_without_keys(tmp_path: Path, simulator: Simulator) -> None:
    config = _config(tmp_path, simulator)
    env = {KEY_ENV: PROVIDER_KEY, "TOLLHOUSE_HOME": str(tmp_path)}
    with GatewayProcess(config, env=env, args=("-v", "--log-format", "json")) as gw:
        _calls(gw.url)
        gw.stop()  # rows and their lines are flushed on the way out
        logged = gw.stderr()
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "tollhouse.requests"]
    assert [r["status"] for r in requests] == [200, 400]
    ok = requests[0]
    assert ok["project"] == "acme" and ok["model"] == "gpt-4o-mini" and ok["trust"] == "full"
    assert ok["input_tokens"] > 0 and Decimal(ok["cost_usd"]) > 0
    assert requests[1]["project"] == "acme" and requests[1]["error"]
    assert PROVIDER_KEY not in logged and ACME_KEY not in logged


def test_serve_without_v_logs_no_request_lines(tmp_path: Path, simulator: Simulator) -> None:
    config = _config(tmp_path, simulator)
    env = {KEY_ENV: PROVIDER_KEY, "TOLLHOUSE_HOME": str(tmp_path)}
    with GatewayProcess(config, env=env) as gw:
        _calls(gw.url)
        gw.stop()
        assert "tollhouse.requests" not in gw.stderr()
