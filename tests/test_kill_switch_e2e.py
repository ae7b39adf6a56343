"""The kill switch through the real SDKs and CLI: a blocked model's traffic goes down
its chain, a request with nowhere else to go gets a 403 in its own dialect and a
row, a project's lists hold, and a block survives a restart (issue 25)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anthropic
import openai
import pytest
from click.testing import CliRunner

from tests.conftest import GatewayFactory, Harness, base_config
from tests.test_metering_e2e import an, oa
from tollhouse.cli.main import cli
from tollhouse.simulator import Simulator

BLOCKED, OTHER = "gpt-4o", "gpt-4o-mini"


def chat(gateway: Harness, model: str) -> openai.APIResponse:  # type: ignore[type-arg]
    return oa(gateway).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def row(gateway: Harness, request_id: str) -> tuple[int, str, str]:
    gateway.settle()
    conn = sqlite3.connect(gateway.ledger_path)
    try:
        found = conn.execute(
            "SELECT status, error, project FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
    finally:
        conn.close()
    assert found is not None
    return found  # type: ignore[no-any-return]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))  # the operator token's
    return tmp_path / "home"


def test_a_blocked_model_goes_down_its_chain_and_alone_is_refused_in_dialect(
    make_gateway: GatewayFactory, simulator: Simulator, home: Path
) -> None:
    config = base_config(simulator.url)
    config["models"] = {
        "smart": {"chain": [f"openai/{BLOCKED}", f"openai/{OTHER}"]},
        "solo": {"chain": [f"openai/{BLOCKED}"]},
    }
    gateway = make_gateway(config)
    assert chat(gateway, "smart").headers["x-tollhouse-served-by"] == f"openai/{BLOCKED}"
    out = run("models", "block", f"openai/{BLOCKED}", "--reason", "pulled", "--url", gateway.url)
    assert f"openai/{BLOCKED}: blocked" in out
    served = chat(gateway, "smart")  # at once, on this instance
    assert served.headers["x-tollhouse-served-by"] == f"openai/{OTHER}"
    assert served.headers["x-tollhouse-trust"] == "degraded"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat(gateway, f"openai/{BLOCKED}")
    assert "blocked by operator" in refused.value.message and "pulled" in refused.value.message
    request_id = refused.value.response.headers["x-tollhouse-request-id"]
    status, error, _ = row(gateway, request_id)
    assert (status, error) == (403, "gateway:permission")
    with pytest.raises(anthropic.PermissionDeniedError):  # and in Anthropic's dialect
        an(gateway).messages.create(
            model="solo", max_tokens=16, messages=[{"role": "user", "content": "x"}]
        )
    listed = run("models", "blocks", "--url", gateway.url)
    assert f"openai/{BLOCKED}  [runtime]  (pulled)" in listed
    assert "unblocked" in run("models", "unblock", f"openai/{BLOCKED}", "--url", gateway.url)
    assert chat(gateway, "smart").headers["x-tollhouse-served-by"] == f"openai/{BLOCKED}"


def test_a_block_needs_the_operator_token_and_survives_a_restart(
    make_gateway: GatewayFactory, simulator: Simulator, home: Path
) -> None:
    import urllib.error
    import urllib.request

    config = base_config(simulator.url)
    first = make_gateway(config)
    request = urllib.request.Request(
        first.url + "/tollhouse/v1/models/block",
        data=json.dumps({"provider": "openai", "model": BLOCKED}).encode(),
        headers={"Content-Type": "application/json", "X-Tollhouse-Operator": "guess"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403
    assert chat(first, f"openai/{BLOCKED}").status_code == 200  # a guess blocks nothing
    run("models", "block", f"openai/{BLOCKED}", "--url", first.url)
    assert (home / "blocks.json").exists()
    second = make_gateway(config)  # a restart reads blocks.json
    with pytest.raises(openai.PermissionDeniedError):
        chat(second, f"openai/{BLOCKED}")
    assert chat(second, f"openai/{OTHER}").status_code == 200


def test_a_projects_deny_list_refuses_with_a_row_and_its_allow_list_holds(
    make_gateway: GatewayFactory, simulator: Simulator, home: Path
) -> None:
    config = base_config(simulator.url)
    acme = next(iter(config["projects"]))
    config["projects"][acme]["deny_models"] = [f"openai/{BLOCKED}*"]
    gateway = make_gateway(config)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat(gateway, f"openai/{BLOCKED}")
    assert "denies it (deny_models)" in refused.value.message
    status, _, project = row(gateway, refused.value.response.headers["x-tollhouse-request-id"])
    assert (status, project) == (403, acme)
    config["projects"][acme]["deny_models"] = []
    config["projects"][acme]["allow_models"] = [f"openai/{OTHER}"]
    allowed = make_gateway(config)
    assert chat(allowed, f"openai/{OTHER}").status_code == 200
    with pytest.raises(openai.PermissionDeniedError):
        chat(allowed, f"openai/{BLOCKED}")
