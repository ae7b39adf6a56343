"""One sick model never takes its healthy siblings down (issue 15).

Health is kept per deployment (provider x model): each signal below says what
it ejects and what keeps serving, through the real SDKs and the simulator.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web
from click.testing import CliRunner

from tests.conftest import GatewayFactory, Harness, base_config
from tests.test_capacity_e2e import attempts
from tests.test_metering_e2e import an, oa
from tollhouse.cli.main import cli
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer, free_port

SICK, SIBLING = "sick-model", "gpt-4o"
FAST = {"retry_base_s": 0.01, "retry_cap_s": 0.02}


def chat(gateway: Harness, model: str, **kw: Any) -> Any:
    return oa(gateway, **kw).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "are you there?"}]
    )


def capacity(gateway: Harness) -> dict[str, Any]:
    with urllib.request.urlopen(gateway.url + "/tollhouse/v1/capacity", timeout=10) as reply:
        found: dict[str, Any] = json.load(reply)
    return found


def ejected(gateway: Harness) -> dict[tuple[str, str | None], dict[str, Any]]:
    stats = capacity(gateway)
    return {(e["provider"], e["model"]): e for s in stats.values() for e in s["ejections"]}


def test_three_requests_to_a_sick_model_leave_its_siblings_serving(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    """The issue's measurement, with the default breaker and attempts."""
    config = base_config(faults.url)
    config["models"] = {"chain": {"chain": [f"anthropic/{SICK}", f"openai/{SIBLING}"]}}
    config["capacity"] = FAST
    gateway = make_gateway(config)
    faults.program("overloaded", count=1000, model=SICK)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError) as info:
            chat(gateway, f"openai/{SICK}")
        assert info.value.status_code == 503
        assert "x-tollhouse-served-by" not in info.value.response.headers  # it served nothing
    assert ejected(gateway)[("openai", SICK)]["reason"] == "overloaded"
    direct = chat(gateway, f"openai/{SIBLING}")
    assert direct.http_response.status_code == 200
    assert direct.headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"
    chained = chat(gateway, "chain")
    assert chained.http_response.status_code == 200
    assert chained.headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"
    assert chained.headers["x-tollhouse-trust"] == "degraded"
    assert capacity(gateway)["openai"]["breaker"] == "closed"


def test_an_open_circuit_is_skipped_and_the_error_says_so(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["capacity"] = {**FAST, "breaker_failures": 2, "max_attempts": 2}
    gateway = make_gateway(config)
    faults.program("overloaded", count=1000, model=SICK)
    with pytest.raises(openai.InternalServerError):
        chat(gateway, f"openai/{SICK}")
    before = len([b for b in faults.bills() if b["model"] == SICK])
    with pytest.raises(openai.InternalServerError) as info:
        chat(gateway, f"openai/{SICK}")
    assert len([b for b in faults.bills() if b["model"] == SICK]) == before  # not sent
    assert info.value.status_code == 503
    assert info.value.response.headers["x-should-retry"] == "false"
    assert f"openai/{SICK}: skipped (circuit open (overloaded)" in info.value.message


def test_a_chain_whose_every_candidate_fails_claims_no_model(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["models"] = {"chain": {"chain": [f"anthropic/{SICK}", "openai/sick-too"]}}
    config["capacity"] = {**FAST, "max_attempts": 2}
    gateway = make_gateway(config)
    faults.program("overloaded", count=1000, model=SICK)
    faults.program("server_error", count=1000, model="sick-too")
    with pytest.raises(anthropic.InternalServerError) as info:
        an(gateway).messages.create(
            model="chain", max_tokens=16, messages=[{"role": "user", "content": "x"}]
        )
    headers = info.value.response.headers
    assert "x-tollhouse-served-by" not in headers and "x-tollhouse-trust" not in headers
    assert headers["x-should-retry"] == "false" and headers["x-tollhouse-attempts"] == "4"
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"  # the client's dialect
    message = body["error"]["message"]
    assert f"anthropic/{SICK}: failed, overloaded (529) x2" in message
    assert "openai/sick-too: failed, server (500) x2" in message
    row = gateway.last()
    assert row["trust"] is None and row["status"] == 500


def test_a_dead_provider_is_ejected_on_its_first_failure(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    config = base_config(simulator.url)
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    config["providers"][0]["base_url"] = closed
    config["models"] = {"chain": {"chain": [f"openai/{SIBLING}", "xai/grok-3-mini"]}}
    gateway = make_gateway(config)
    raw = chat(gateway, "chain")
    assert raw.headers["x-tollhouse-served-by"] == "xai/grok-3-mini"  # within the same request
    assert raw.headers["x-tollhouse-trust"] == "degraded"
    tried = attempts(gateway, raw.headers["x-tollhouse-request-id"])
    assert [(a["provider"], a["error_class"]) for a in tried] == [
        ("openai", "connection"),  # once: no retry against a provider that isn't there
        ("xai", None),
    ]
    whole = ejected(gateway)[("openai", None)]
    assert whole["reason"].startswith("no connection") and whole["until"] > whole["since"]
    with pytest.raises(openai.InternalServerError) as info:  # any of its models: skipped
        chat(gateway, "openai/gpt-4o-mini")
    assert info.value.status_code == 503
    assert "openai/gpt-4o-mini: skipped (provider ejected (no connection" in info.value.message


def test_several_models_failing_at_once_eject_the_provider(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["capacity"] = {**FAST, "breaker_failures": 1, "max_attempts": 1}
    gateway = make_gateway(config)
    sick = ["sick-a", "sick-b", "sick-c"]
    for model in sick:
        faults.program("server_error", count=10, model=model)
    for model in sick[:2]:
        with pytest.raises(openai.InternalServerError):
            chat(gateway, f"openai/{model}")
    assert ("openai", None) not in ejected(gateway)  # two models: still theirs alone
    assert chat(gateway, f"openai/{SIBLING}").http_response.status_code == 200
    with pytest.raises(openai.InternalServerError):
        chat(gateway, "openai/sick-c")
    whole = ejected(gateway)[("openai", None)]
    assert whole["reason"] == "3 models failing: sick-a, sick-b, sick-c"


@pytest.mark.parametrize("status", [401, 403])
def test_the_gateways_key_refused_ejects_the_provider(
    make_gateway: GatewayFactory, simulator: Simulator, status: int
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        body = {"error": {"type": "invalid_request_error", "code": "invalid_api_key"}}
        return web.json_response(body, status=status)

    def app() -> web.Application:
        a = web.Application()
        a.router.add_post("/v1/chat/completions", refuse)
        return a

    fake = BackgroundServer(app).start()
    try:
        config = base_config(simulator.url)
        config["providers"][0]["base_url"] = fake.url + "/v1"
        config["models"] = {"chain": {"chain": [f"openai/{SIBLING}", "xai/grok-3-mini"]}}
        gateway = make_gateway(config)
        raw = chat(gateway, "chain")
        assert raw.headers["x-tollhouse-served-by"] == "xai/grok-3-mini"
        reason = ejected(gateway)[("openai", None)]["reason"]
        assert reason == f"authentication refused ({status})"
    finally:
        fake.stop()


def test_a_client_own_key_refused_ejects_nothing(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "invalid_api_key"}}, status=401)

    def app() -> web.Application:
        a = web.Application()
        a.router.add_post("/v1/chat/completions", refuse)
        return a

    fake = BackgroundServer(app).start()
    try:
        config = base_config(simulator.url)
        config["providers"][0]["base_url"] = fake.url + "/v1"
        gateway = make_gateway(config)
        with pytest.raises(openai.AuthenticationError):
            chat(gateway, SIBLING, key="sk-someone-elses-wrong-key")
        assert ejected(gateway) == {}  # one client's bad key says nothing about the provider
    finally:
        fake.stop()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("overloaded", "overloaded"), ("server_error", "server")],
)
def test_5xx_eject_the_deployment_only(
    make_gateway: GatewayFactory, faults: Simulator, fault: str, reason: str
) -> None:
    config = base_config(faults.url)
    config["models"] = {"chain": {"chain": [f"openai/{SICK}", f"openai/{SIBLING}"]}}
    config["capacity"] = {**FAST, "breaker_failures": 2, "max_attempts": 2}
    gateway = make_gateway(config)
    faults.program(fault, count=1000, model=SICK)
    first = chat(gateway, "chain")
    assert first.headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"  # same provider
    assert set(ejected(gateway)) == {("openai", SICK)}
    assert ejected(gateway)[("openai", SICK)]["reason"] == reason
    second = chat(gateway, "chain")
    tried = attempts(gateway, second.headers["x-tollhouse-request-id"])
    assert tried[0]["skipped"].startswith(f"circuit open ({reason})")
    assert second.headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"


def test_a_rate_limit_cools_the_model_down_and_ejects_nothing(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["models"] = {"chain": {"chain": [f"openai/{SICK}", f"openai/{SIBLING}"]}}
    config["capacity"] = {**FAST, "max_attempts": 1, "deadline_ms": 200}
    gateway = make_gateway(config)
    faults.program("rate_limit,retry_after=30", count=1000, model=SICK)
    raw = chat(gateway, "chain")
    assert raw.headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"
    assert ejected(gateway) == {}
    assert capacity(gateway)["openai"]["models"][SICK]["cooling_for"] > 0
    assert chat(gateway, f"openai/{SIBLING}").http_response.status_code == 200


def test_a_model_gone_is_skipped_and_ejects_nothing(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["models"] = {"chain": {"chain": [f"openai/{SICK}", f"openai/{SIBLING}"]}}
    gateway = make_gateway(config)
    faults.program("not_found", count=1000, model=SICK)
    assert chat(gateway, "chain").headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"
    assert ejected(gateway) == {}
    assert capacity(gateway)["openai"]["gone"] == [SICK]
    assert chat(gateway, f"openai/{SIBLING}").http_response.status_code == 200


def test_timeouts_eject_the_deployment_only(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    config = base_config(faults.url)
    config["models"] = {"chain": {"chain": [f"openai/{SICK}", f"openai/{SIBLING}"]}}
    config["capacity"] = {**FAST, "breaker_failures": 1, "max_attempts": 1}
    gateway = make_gateway(config, read_timeout_s=0.3)
    faults.program("latency=1000", count=1, model=SICK)
    before = len([b for b in faults.bills() if b["model"] == SICK])
    raw = chat(gateway, "chain")
    assert raw.headers["x-tollhouse-served-by"] == f"openai/{SIBLING}"
    assert set(ejected(gateway)) == {("openai", SICK)}
    assert ejected(gateway)[("openai", SICK)]["reason"] == "timeout"
    # The simulator finishes (and bills) the abandoned call later: wait for it here, so it
    # doesn't land in another test's count of the shared simulator's bills.
    deadline = time.monotonic() + 10
    while len([b for b in faults.bills() if b["model"] == SICK]) == before:
        assert time.monotonic() < deadline, "the timed-out call was never billed"
        time.sleep(0.05)


def clear_faults(sim: Simulator) -> None:
    request = urllib.request.Request(sim.url + "/_sim/faults", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()


def post_reset(gateway: Harness, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Tollhouse-Operator"] = token
    request = urllib.request.Request(
        gateway.url + "/tollhouse/v1/models/reset",
        data=json.dumps(body).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_report_capacity_shows_ejections_and_models_reset_readmits(
    make_gateway: GatewayFactory,
    faults: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))  # the operator token's
    config = base_config(faults.url)
    config["capacity"] = {"breaker_failures": 1, "max_attempts": 1}
    gateway = make_gateway(config)
    faults.program("overloaded", count=1000, model=SICK)
    with pytest.raises(openai.InternalServerError):
        chat(gateway, f"openai/{SICK}")
    gateway.settle()
    runner = CliRunner()
    report = ["report", "--capacity", "--ledger", str(gateway.ledger_path), "--format", "json"]
    result = runner.invoke(cli, [*report, "--url", gateway.url])
    assert result.exit_code == 0, result.output
    rows = {(r["provider"], r["model"]): r for r in json.loads(result.output)}
    sick = rows[("openai", SICK)]
    assert sick["ejected"] == "overloaded" and sick["overloaded"] == 1
    assert sick["ejected_since"] < sick["ejected_until"]
    status, refused = post_reset(gateway, {"provider": "openai", "model": SICK}, "not-it")
    assert status == 403 and "operator token" in refused["error"]["message"]
    assert ("openai", SICK) in ejected(gateway)  # still ejected
    clear_faults(faults)  # the model has recovered
    result = runner.invoke(cli, ["models", "reset", f"openai/{SICK}", "--url", gateway.url])
    assert result.exit_code == 0, result.output
    assert "openai/sick-model: re-admitted" in result.output
    assert ejected(gateway) == {}
    assert chat(gateway, f"openai/{SICK}").http_response.status_code == 200  # at once
    again = runner.invoke(cli, ["models", "reset", f"openai/{SICK}", "--url", gateway.url])
    assert "was not ejected" in again.output
    unknown = runner.invoke(cli, ["models", "reset", "nosuch/x", "--url", gateway.url])
    assert unknown.exit_code != 0 and "no provider named 'nosuch'" in unknown.output


def test_models_reset_clears_a_provider_wide_ejection(
    make_gateway: GatewayFactory,
    simulator: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOLLHOUSE_HOME", str(tmp_path / "home"))
    config = base_config(simulator.url)
    config["providers"][0]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    gateway = make_gateway(config)
    with pytest.raises(openai.APIStatusError):
        chat(gateway, f"openai/{SIBLING}")
    assert ("openai", None) in ejected(gateway)
    token = (tmp_path / "home" / "operator.token").read_text().strip()
    status, found = post_reset(gateway, {"provider": "openai"}, token)
    assert status == 200 and found == {"provider": "openai", "model": None, "cleared": True}
    assert ejected(gateway) == {}
