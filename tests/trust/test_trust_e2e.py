"""Keeping agents honest, end to end: the official SDKs, the gateway, the simulator.

A ``[models.smart]`` chain falls back from openai/gpt-4o-mini to
xai/grok-3-mini when the simulator is programmed to fail the primary.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.conftest import ACME_KEY, GatewayFactory, Harness, base_config
from tollhouse.agent import ActionFailed, Held, Task, TrustError
from tollhouse.simulator import Simulator
from tollhouse.trust import http as trust_http

PRIMARY, FALLBACK = "gpt-4o-mini", "grok-3-mini"
ACME = {"X-Tollhouse-Project": "acme"}  # who reports an action: the project that claimed it


def trust_config(sim_url: str, **trust: Any) -> dict[str, Any]:
    config = base_config(sim_url)
    config["models"] = {"smart": {"chain": [f"openai/{PRIMARY}", f"xai/{FALLBACK}"]}}
    config["capacity"] = {"max_attempts": 1}
    # The idempotency tests act on tasks with no model calls; the default (hold) has its own test.
    config["trust"] = {"divergence_sample": 0.0, "unknown_task": "allow", **trust}
    return config


@pytest.fixture
def gw(make_gateway: GatewayFactory, simulator: Simulator) -> Harness:
    return make_gateway(trust_config(simulator.url))


def client(gateway: Harness, task: Task, key: str = ACME_KEY) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=key,
        max_retries=0,
        http_client=task.http_client(),
    )


def ask(c: openai.OpenAI, text: str = "next step", **kw: Any) -> Any:
    return c.chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": text}], **kw
    )


def six_steps(gateway: Harness, sim: Simulator, task: Task, inputs: dict[str, list[str]]) -> None:
    c = client(gateway, task)
    for n in "123456":
        if n == "3":
            sim.program("server_error", count=1, model=PRIMARY)
        with task.step(n, inputs.get(n)):
            raw = ask(c, f"step {n}")
        assert raw.headers["x-tollhouse-trust"] == ("degraded" if n == "3" else "full")


def token(gateway: Harness) -> str:
    """The operator token the gateway made (what `tollhouse approve` reads from its file)."""
    assert gateway.server.app is not None
    found = gateway.server.app[trust_http.OPERATOR_TOKEN]
    assert found is not None
    return found


OPERATOR = trust_http.OPERATOR_HEADER


def operator(gateway: Harness) -> dict[str, str]:
    return {OPERATOR: token(gateway)}


def api(gateway: Harness, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}/tollhouse/v1{path}", timeout=30, **kw)


def table(gateway: Harness, name: str) -> list[dict[str, Any]]:
    gateway.settle()
    conn = sqlite3.connect(gateway.ledger_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {name} ORDER BY id")]
    finally:
        conn.close()


def test_a_fallback_at_step_3_taints_steps_4_to_6(gw: Harness, faults: Simulator) -> None:
    with Task("chain", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        steps = {s["step"]: s for s in task.trajectory()["steps"]}
        assert [steps[n]["own"] for n in "123456"] == ["full"] * 2 + ["degraded"] + ["full"] * 3
        assert [steps[n]["tainted_by"] for n in "123456"] == [[], []] + [["3"]] * 4
        assert "xai/grok-3-mini instead of openai/gpt-4o-mini" in steps["3"]["degraded_because"]
        held = task.gate("send-invoice", irreversible=True)
        assert (held["allow"], held["trust"], held["tainted_by"]) == (False, "degraded", ["3"])
        passed = task.gate("draft-invoice", irreversible=False)
        assert (passed["allow"], passed["trust"], passed["tainted_by"]) == (True, "degraded", ["3"])
    step_rows = table(gw, "trust_steps")
    assert [(r["step"], r["own"]) for r in step_rows][2] == ("3", "degraded")
    requests = {r["request_id"]: r for r in table(gw, "requests")}
    assert requests[step_rows[2]["request_id"]]["trust"] == "degraded"


def test_explicit_inputs_narrow_the_taint(gw: Harness, faults: Simulator) -> None:
    with Task("narrow", base_url=gw.url) as task:
        six_steps(gw, faults, task, {"4": ["1"], "5": ["4"], "6": ["5", "2"]})
        steps = {s["step"]: s["tainted_by"] for s in task.trajectory()["steps"]}
        assert [steps[n] for n in "456"] == [[], [], []]
        assert task.gate("deploy", irreversible=True, inputs=["6"])["allow"] is True
        assert task.gate("deploy", irreversible=True)["allow"] is False  # default: every step
    # A step the task never recorded (a typo) must not read as "no taint": it is refused.
    typo = api(
        gw,
        "POST",
        "/gate",
        json={"task": "narrow", "action": "deploy", "irreversible": True, "inputs": ["6", "66"]},
    )
    assert typo.status_code == 400 and "has no step '66'" in typo.json()["error"]["message"]
    body = {"task": "narrow", "name": "deploy", "irreversible": True, "inputs": ["7"]}
    claim = api(gw, "POST", "/actions", json=body, headers={"Idempotency-Key": "typo"})
    assert claim.status_code == 400 and "its steps: 1, 2, 3, 4, 5, 6" in claim.text


def test_verify_reruns_on_the_primary_and_clears_the_taint(gw: Harness, faults: Simulator) -> None:
    with Task("verify", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        bills = len(faults.bills())
        result = task.verify("3")
        assert result["verified"] is True and result["served_by"] == f"openai/{PRIMARY}"
        assert 0.0 < result["similarity"] <= 1.0 and result["answer"]
        assert result["task_trust"] == "full"
        assert task.gate("send-invoice", irreversible=True)["allow"] is True
    assert len(faults.bills()) == bills + 1  # exactly one re-run, on the primary
    rerun = gw.row(result["request_id"])
    assert (rerun["provider"], rerun["trust"], rerun["status"]) == ("openai", "full", 200)
    assert '"tollhouse": "verify"' in rerun["tags"]
    samples = table(gw, "trust_divergence")
    assert [(s["kind"], s["step"], s["similarity"]) for s in samples] == [
        ("verify", "3", result["similarity"])
    ]


def test_verify_that_is_not_accepted_keeps_the_taint(gw: Harness, faults: Simulator) -> None:
    with Task("refused", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        assert task.verify("3", accept=False)["verified"] is False
        assert task.gate("deploy", irreversible=True)["allow"] is False
        bills = len(faults.bills())
        for wrong in ({"min_similarity": 1.01}, {"min_similarity": "high"}, {"accept": "yes"}):
            response = api(gw, "POST", "/tasks/refused/steps/3/verify", json=wrong)
            assert response.status_code == 400, wrong
            assert "must be" in response.json()["error"]["message"]
        assert len(faults.bills()) == bills  # a wrong body is refused before any re-run
        assert task.verify("3", min_similarity=0.0)["verified"] is True
        assert task.gate("deploy", irreversible=True)["allow"] is True


def test_a_fresh_step_has_no_request_to_verify(gw: Harness, faults: Simulator) -> None:
    with Task("fresh", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        response = api(gw, "POST", "/tasks/fresh/steps/2/verify")
        assert response.status_code == 409
        assert "tollhouse approve fresh 2" in response.json()["error"]["message"]
        assert api(gw, "POST", "/tasks/fresh/steps/9/verify").status_code == 404
        nope = api(gw, "POST", "/tasks/nope/steps/1/approve", headers=operator(gw))
        assert nope.status_code == 404


def test_the_cli_approval_clears_the_taint(gw: Harness, faults: Simulator) -> None:
    from click.testing import CliRunner

    from tollhouse.cli.main import cli

    with Task("approve", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        result = CliRunner().invoke(
            cli, ["approve", "approve", "3", "--url", gw.url, "--by", "ann"]
        )
        assert result.exit_code == 0, result.output
        assert "approved step 3 of approve" in result.output
        assert task.gate("deploy", irreversible=True)["allow"] is True
        step = next(s for s in task.trajectory()["steps"] if s["step"] == "3")
        assert (step["cleared"], step["cleared_by"]) == ("approved", "ann")
    port = gw.url.rsplit(":", 1)[1]
    config = gw.ledger_path.parent / "approve.toml"
    config.write_text(f"[server]\nport = {port}\n")
    by_config = CliRunner().invoke(cli, ["approve", "approve", "3", "--config", str(config)])
    assert by_config.exit_code == 0, by_config.output  # the gateway of that config, not 4141
    bad = CliRunner().invoke(cli, ["approve", "nope", "1", "--url", gw.url])
    assert bad.exit_code == 1 and "no model calls are recorded for task 'nope'" in bad.output
    gone = CliRunner().invoke(cli, ["approve", "t", "1", "--url", "http://127.0.0.1:9"])
    assert gone.exit_code == 1 and "tollhouse serve" in gone.output


def test_the_gate_fails_closed_on_a_task_it_has_never_seen(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    config = trust_config(simulator.url)
    del config["trust"]["unknown_task"]  # the default: hold
    gateway = make_gateway(config)
    typo = {"task": "refund-4171", "action": "refund", "irreversible": True}
    held = api(gateway, "POST", "/gate", json=typo).json()
    assert (held["allow"], held["trust"]) == (False, "unknown")
    assert "check the task id" in held["reasons"][0]
    with Task("refund-4171", base_url=gateway.url) as task, task.step("1"):
        ask(client(gateway, task), "look up the order")
    assert api(gateway, "POST", "/gate", json=typo).json()["allow"] is True


def action(gateway: Harness, key: str, project: str = "acme", **body: Any) -> httpx.Response:
    payload = {"task": "pay", "name": "charge", "payload": {"eur": 10}, "irreversible": True}
    return api(
        gateway,
        "POST",
        "/actions",
        json={**payload, **body},
        headers={"Idempotency-Key": f'"{key}"', "X-Tollhouse-Project": project},
    )


def test_idempotent_action_replays_its_outcome(gw: Harness) -> None:
    first = action(gw, "k1")
    assert first.status_code == 201 and first.json()["status"] == "in_flight"
    assert "Idempotent-Replayed" not in first.headers
    in_flight = action(gw, "k1")
    assert (
        in_flight.status_code == 409 and "still in flight" in in_flight.json()["error"]["message"]
    )
    done = api(
        gw,
        "PUT",
        f"/actions/{first.json()['id']}",
        json={"status": "succeeded", "result": {"charge": "ch_1"}},
        headers=ACME,
    )
    assert done.status_code == 200
    again = action(gw, "k1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["result"] == {"charge": "ch_1"} and again.json()["id"] == first.json()["id"]
    other = action(gw, "k1", payload={"eur": 99})
    assert (
        other.status_code == 422
        and "different action or payload" in other.json()["error"]["message"]
    )
    twice = api(
        gw, "PUT", f"/actions/{first.json()['id']}", json={"status": "failed"}, headers=ACME
    )
    assert twice.status_code == 409


def test_fifty_concurrent_claims_of_one_key_have_one_winner(gw: Harness) -> None:
    with ThreadPoolExecutor(50) as pool:
        statuses = sorted(pool.map(lambda _: action(gw, "race").status_code, range(50)))
    assert statuses == [201] + [409] * 49
    rows = table(gw, "trust_actions")
    assert len(rows) == 1 and rows[0]["status"] == "in_flight"


def test_keys_are_isolated_across_projects(gw: Harness) -> None:
    assert action(gw, "shared", project="acme").status_code == 201
    assert action(gw, "shared", project="globex", payload={"x": 1}).status_code == 201
    assert action(gw, "shared", project="acme").status_code == 409


def test_a_held_action_is_not_claimed_until_cleared(gw: Harness, faults: Simulator) -> None:
    with Task("hold", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        with pytest.raises(Held) as info:
            task.action("deploy", {"v": 2}, irreversible=True)
        assert info.value.status == 423 and info.value.decision["tainted_by"] == ["3"]
        assert task.action("notify", {"v": 2}, irreversible=False).status == "in_flight"
        task.approve("3", by="ops", operator_token=token(gw))
        calls: list[int] = []
        result = task.run_once(
            "deploy", {"v": 2}, lambda: calls.append(1) or "deployed", irreversible=True
        )
        replay = task.run_once(
            "deploy", {"v": 2}, lambda: calls.append(1) or "again", irreversible=True
        )
        assert (result, replay, calls) == ("deployed", "deployed", [1])
        task.action("rollback", {"v": 1}, irreversible=True).abandoned()  # it never ran
    metrics = api(gw, "GET", "/trust/metrics").json()
    assert metrics["held_actions"] == 1
    assert (metrics["irreversible_actions"], metrics["tainted_irreversible_fired"]) == (1, 0)
    assert metrics["tainted_irreversible_share"] == 0.0


def test_bad_trust_requests_say_how_to_fix_them(gw: Harness) -> None:
    no_key = api(gw, "POST", "/actions", json={"task": "t", "name": "n", "irreversible": True})
    assert no_key.status_code == 400 and "Idempotency-Key" in no_key.json()["error"]["message"]
    gate = api(gw, "POST", "/gate", json={"task": "t", "action": "a"})
    assert (
        gate.status_code == 400 and '"irreversible" is required' in gate.json()["error"]["message"]
    )
    json_type = {"Content-Type": "application/json"}
    junk = api(gw, "POST", "/gate", content=b"{nope", headers=json_type)
    assert junk.status_code == 400 and "not valid JSON" in junk.json()["error"]["message"]
    outcome = api(gw, "PUT", "/actions/act_x", json={"status": "maybe"})
    assert outcome.status_code == 400
    long = {"task": "t", "name": "refund " + "x" * 300, "irreversible": True}
    cut = api(gw, "POST", "/actions", json=long, headers={"Idempotency-Key": "long"})
    assert cut.status_code == 400 and "at most 200" in cut.json()["error"]["message"]
    evil = api(gw, "POST", "/gate", json={}, headers={"Host": "evil.example"})
    assert evil.status_code == 403
    with pytest.raises(openai.BadRequestError, match="X-Tollhouse-Cache must be"):
        openai.OpenAI(
            base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0
        ).chat.completions.create(
            model="smart",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Tollhouse-Cache": "please"},
        )


def cached(gateway: Harness, assumes: str | None, text: str = "cache me", **kw: Any) -> Any:
    headers = {"X-Tollhouse-Cache": "use"}
    if assumes:
        headers["X-Tollhouse-Assumes"] = assumes
    c = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ACME_KEY, max_retries=0)
    return c.chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": text}], extra_headers=headers, **kw
    )


def test_cache_hits_and_validity_misses(gw: Harness, simulator: Simulator) -> None:
    first = cached(gw, "commit-a")
    assert first.headers["x-tollhouse-cache"] == "miss"
    gw.settle()
    bills = len(simulator.bills())
    hit = cached(gw, "commit-a")
    assert hit.headers["x-tollhouse-cache"] == "hit"
    assert hit.headers["x-tollhouse-trust"] == "degraded"
    assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(simulator.bills()) == bills  # no upstream call
    moved = cached(gw, "commit-b")
    assert moved.headers["x-tollhouse-cache"] == "validity-miss"  # stored, but assumed otherwise
    assert len(simulator.bills()) == bills + 1
    lookups = [r["outcome"] for r in table(gw, "trust_cache_lookups")]
    assert lookups == ["miss", "hit", "validity_miss"]
    metrics = api(gw, "GET", "/trust/metrics").json()
    assert (metrics["cache_lookups"], metrics["cache_hits"], metrics["cache_validity_misses"]) == (
        3,
        1,
        1,
    )
    assert metrics["cache_validity_miss_rate"] == pytest.approx(1 / 3, abs=1e-6)
    row = gw.row(hit.headers["x-tollhouse-request-id"])
    assert (row["trust"], row["attempts"], row["status"]) == ("degraded", 0, 200)


def test_a_cache_hit_taints_the_step_it_answers(gw: Harness) -> None:
    cached(gw, None, "shared prompt")
    with Task("cached", base_url=gw.url) as task:
        c = openai.OpenAI(
            base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0, http_client=task.http_client()
        )
        c.chat.completions.create(
            model="smart",
            messages=[{"role": "user", "content": "shared prompt"}],
            extra_headers={"X-Tollhouse-Cache": "use"},
        )
        decision = task.gate("merge", irreversible=True)
        assert decision["allow"] is False and "from the cache" in decision["reasons"][0]


def test_degraded_answers_are_never_cached(gw: Harness, faults: Simulator) -> None:
    faults.program("server_error", count=1, model=PRIMARY)
    assert cached(gw, None, "degraded once").headers["x-tollhouse-trust"] == "degraded"
    second = cached(gw, None, "degraded once")
    assert second.headers.get("x-tollhouse-cache") != "hit"
    assert second.headers["x-tollhouse-served-by"] == f"openai/{PRIMARY}"
    assert cached(gw, None, "degraded once").headers["x-tollhouse-cache"] == "hit"


def test_errors_are_never_cached(gw: Harness, faults: Simulator) -> None:
    faults.program("insufficient_quota", count=1, model=PRIMARY)
    with pytest.raises(openai.RateLimitError):
        cached(gw, None, "error once")
    assert cached(gw, None, "error once").headers.get("x-tollhouse-cache") != "hit"


def test_partial_streams_are_never_cached(gw: Harness, faults: Simulator) -> None:
    faults.program("cut=2", count=1, model=PRIMARY)
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0)
    headers = {"X-Tollhouse-Cache": "use"}
    messages = [{"role": "user", "content": "stream me"}]
    with pytest.raises(openai.APIError):
        list(
            c.chat.completions.create(
                model="smart", messages=messages, stream=True, extra_headers=headers
            )
        )  # type: ignore[arg-type]
    gw.settle()
    raw = c.chat.completions.with_raw_response.create(
        model="smart",
        messages=messages,
        stream=True,
        extra_headers=headers,  # type: ignore[arg-type]
    )
    assert raw.headers.get("x-tollhouse-cache") != "hit"
    text = "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
    gw.settle()
    hit = c.chat.completions.with_raw_response.create(
        model="smart",
        messages=messages,
        stream=True,
        extra_headers=headers,  # type: ignore[arg-type]
    )
    assert hit.headers["x-tollhouse-cache"] == "hit"
    assert "".join(ch.choices[0].delta.content or "" for ch in hit.parse() if ch.choices) == text


def test_anthropic_clients_are_labelled_and_cached_too(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    config = trust_config(simulator.url, cache_models=["claude-haiku-4-5"])
    gw = make_gateway(config)
    with Task("claude", base_url=gw.url) as task:
        c = anthropic.Anthropic(
            base_url=gw.url, api_key=ACME_KEY, max_retries=0, http_client=task.http_client()
        )

        def call(temperature: float) -> Any:
            return c.messages.with_raw_response.create(
                model="claude-haiku-4-5",
                max_tokens=64,
                extra_body={"temperature": temperature},
                messages=[{"role": "user", "content": "hello claude"}],
            )

        with task.step("a"):
            call(0)
        with task.step("b"):
            assert call(0).headers["x-tollhouse-cache"] == "hit"
        with task.step("c"):
            # not deterministic: not even looked up
            assert "x-tollhouse-cache" not in call(0.7).headers
        steps = {s["step"]: s for s in task.trajectory()["steps"]}
        assert [steps[s]["own"] for s in "abc"] == ["full", "degraded", "full"]
        assert steps["c"]["tainted_by"] == ["b"]


def test_fallback_divergence_is_sampled_and_recorded(
    make_gateway: GatewayFactory, faults: Simulator
) -> None:
    gw = make_gateway(trust_config(faults.url, divergence_sample=1.0))
    faults.program("server_error", count=1, model=PRIMARY)
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0)
    raw = ask(c, "how different is the fallback?")
    assert raw.headers["x-tollhouse-trust"] == "degraded"
    ask(c, "a fresh one is not sampled")
    samples = table(gw, "trust_divergence")
    assert len(samples) == 1
    sample = samples[0]
    assert (sample["kind"], sample["request_id"]) == (
        "fallback",
        raw.headers["x-tollhouse-request-id"],
    )
    assert (sample["primary_model"], sample["other_model"]) == (
        f"openai/{PRIMARY}",
        f"xai/{FALLBACK}",
    )
    assert 0.0 < sample["similarity"] <= 1.0
    replays = [r for r in table(gw, "requests") if '"divergence"' in r["tags"]]
    assert len(replays) == 1 and replays[0]["provider"] == "openai"
    d = api(gw, "GET", "/trust/metrics").json()["divergence"]
    assert d["samples"] == 1 and d["mean"] == pytest.approx(sample["similarity"])
    assert sum(n for _, n in d["histogram"]) == 1


def test_metrics_shape_and_filters(gw: Harness, faults: Simulator) -> None:
    with Task("m1", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
    with Task("m2", base_url=gw.url, project="other") as task:
        ask(client(gw, task, key="sk-own"), "clean")  # no virtual key: the header decides
    m = api(gw, "GET", "/trust/metrics").json()
    assert set(m) == {
        "tasks", "degraded_tasks", "degraded_task_share", "irreversible_actions",
        "tainted_irreversible_fired", "tainted_irreversible_share", "held_actions",
        "cache_lookups", "cache_hits", "cache_validity_misses", "cache_validity_miss_rate",
        "divergence",
    }  # fmt: skip
    assert (m["tasks"], m["degraded_tasks"], m["degraded_task_share"]) == (2, 1, 0.5)
    assert m["tainted_irreversible_share"] is None and m["cache_validity_miss_rate"] is None
    other = api(gw, "GET", "/trust/metrics", params={"project": "other"}).json()
    assert (other["tasks"], other["degraded_tasks"]) == (1, 0)
    future = api(gw, "GET", "/trust/metrics", params={"since": "2999-01-01"}).json()
    assert future["tasks"] == 0
    bad = api(gw, "GET", "/trust/metrics", params={"since": "yesterday"})
    assert bad.status_code == 400 and "7d" in bad.json()["error"]["message"]


def test_untagged_requests_leave_no_trust_rows(gw: Harness) -> None:
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=ACME_KEY, max_retries=0)
    raw = ask(c, "plain")
    assert raw.headers.get("x-tollhouse-cache") != "hit"
    assert table(gw, "trust_steps") == [] and table(gw, "trust_cache_lookups") == []


def test_state_survives_a_restart(simulator: Simulator, tmp_path: Any, monkeypatch: Any) -> None:
    from tests.conftest import KEY_ENV, PROVIDER_KEY
    from tollhouse.app import GATEWAY, create_app
    from tollhouse.settings import parse_settings
    from tollhouse.testing import BackgroundServer

    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    settings = parse_settings(trust_config(simulator.url))
    ledger = tmp_path / "ledger.db"

    def start() -> BackgroundServer:
        return BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()

    server = start()
    harness = Harness(server, ledger, settings)
    try:
        with Task("durable", base_url=server.url) as task:
            six_steps(harness, simulator, task, {})
        claimed = action(harness, "once")
        assert claimed.status_code == 201
        cached(harness, "snap-1", "remember me")
        assert server.app is not None
        server.call(server.app[GATEWAY].settle())
    finally:
        server.stop()
    server = start()
    harness = Harness(server, ledger, settings)
    try:
        with Task("durable", base_url=server.url) as task:
            decision = task.gate("deploy", irreversible=True)
            assert (decision["allow"], decision["tainted_by"]) == (False, ["3"])
            task.approve("3", by="after-restart", operator_token=token(harness))
            assert task.gate("deploy", irreversible=True)["allow"] is True
        assert action(harness, "once").status_code == 409  # still in flight across the restart
        # Cached answers are kept in memory only, never in the ledger: gone with the process.
        assert cached(harness, "snap-1", "remember me").headers["x-tollhouse-cache"] == "miss"
    finally:
        server.stop()


def test_a_streamed_degraded_step_is_verified_from_its_stream(
    gw: Harness, faults: Simulator
) -> None:
    with Task("streamed", base_url=gw.url) as task:
        c = client(gw, task)
        faults.program("server_error", count=1, model=PRIMARY)
        with task.step("s1"):
            stream = c.chat.completions.create(
                model="smart", stream=True, messages=[{"role": "user", "content": "stream it"}]
            )
            text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
        assert text
        assert task.gate("ship", irreversible=True)["tainted_by"] == ["s1"]
        result = task.verify("s1")
        assert result["verified"] is True and result["similarity"] > 0.5
        assert task.gate("ship", irreversible=True)["allow"] is True
    rerun = gw.row(result["request_id"])
    assert (rerun["stream"], rerun["incomplete"], rerun["provider"]) == (1, 0, "openai")
    assert rerun["output_tokens"] and rerun["output_tokens"] > 0


def test_the_cli_says_when_the_url_is_not_a_gateway(simulator: Simulator) -> None:
    from click.testing import CliRunner

    from tollhouse.cli.main import cli

    result = CliRunner().invoke(cli, ["approve", "t", "1", "--url", simulator.url])
    assert result.exit_code == 1 and "is that a tollhouse gateway" in result.output
    assert "Traceback" not in result.output


def test_report_trust_from_the_cli(gw: Harness, faults: Simulator) -> None:
    import json

    from click.testing import CliRunner

    from tollhouse.cli.main import cli

    with Task("reported", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        task.gate("deploy", irreversible=True)
    gw.settle()
    ledger = str(gw.ledger_path)
    table_out = CliRunner().invoke(cli, ["report", "--trust", "--ledger", ledger])
    assert table_out.exit_code == 0, table_out.output
    assert "tasks with a degraded step         1 (100.0%)" in table_out.output
    assert "irreversible actions held          1" in table_out.output
    as_json = CliRunner().invoke(cli, ["report", "--trust", "--format", "json", "--ledger", ledger])
    assert json.loads(as_json.output)["held_actions"] == 1


def test_run_once_reports_a_failure_and_does_not_run_again(gw: Harness) -> None:
    calls: list[int] = []

    def boom() -> None:
        calls.append(1)
        raise RuntimeError("card declined")

    with Task("fails", base_url=gw.url) as task:
        with pytest.raises(RuntimeError):
            task.run_once("charge", {"eur": 5}, boom, irreversible=True)
        with pytest.raises(ActionFailed) as replayed:  # not handed back as if it were a result
            task.run_once("charge", {"eur": 5}, boom, irreversible=True)
    assert calls == [1] and replayed.value.result == {"error": "RuntimeError('card declined')"}
    assert [r["status"] for r in table(gw, "trust_actions")] == ["failed"]


def curl_as(
    gateway: Harness, project: str, model: str = PRIMARY, header: str = "X-Tollhouse-Cache: use"
) -> dict[str, str]:
    """A request from another process, attributed by its TOLLHOUSE_PROJECT."""
    import json
    import os
    import subprocess

    body = {"model": model, "messages": [{"role": "user", "content": "what is ours"}]}
    done = subprocess.run(
        [
            *("curl", "-s", "-D", "-", "-o", "/dev/null", f"{gateway.url}/v1/chat/completions"),
            *("-H", "content-type: application/json", "-H", header, "-d", json.dumps(body)),
        ],
        env={**os.environ, "TOLLHOUSE_PROJECT": project},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = [line.partition(":") for line in done.stdout.splitlines()[1:] if ":" in line]
    return {k.strip().lower(): v.strip() for k, _, v in lines}


def test_a_process_attributed_cache_entry_is_not_served_to_another_project(
    gw: Harness,
) -> None:
    first = curl_as(gw, "alpha")
    gw.settle()
    other = curl_as(gw, "beta")
    assert other.get("x-tollhouse-cache") == "miss"  # beta never gets alpha's answer
    gw.settle()
    again = curl_as(gw, "alpha")
    assert again["x-tollhouse-cache"] == "hit"
    rows = [gw.row(h["x-tollhouse-request-id"]) for h in (first, other, again)]
    assert [r["project"] for r in rows] == ["alpha", "beta", "alpha"]


def test_a_verify_rerun_is_charged_to_the_project_of_the_step(
    gw: Harness, faults: Simulator
) -> None:
    faults.program("server_error", count=1, model=PRIMARY)
    step = curl_as(gw, "gamma", model="smart", header="X-Tollhouse-Task: gamma-task")
    assert step["x-tollhouse-trust"] == "degraded"
    result = api(gw, "POST", "/tasks/gamma-task/steps/1/verify").json()
    assert result["verified"] is True
    assert gw.row(result["request_id"])["project"] == "gamma"  # not 'unattributed'


def test_a_verify_rerun_is_held_against_the_project_s_hard_budget(
    make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    """A re-run spends the project's money like any call: it can't overshoot a budget."""
    config = trust_config(simulator.url)
    config["projects"]["acme"].update(budget_daily_usd=1, budget_mode="hard")
    config["prices"] = {  # the primary: $1 for the one token asked; the fallback: free
        f"openai/{PRIMARY}": {"input": 0, "output": 1_000_000},
        f"xai/{FALLBACK}": {"input": 0, "output": 0},
    }
    gw = make_gateway(config)
    with Task("budgeted", base_url=gw.url) as task:
        c = client(gw, task)
        simulator.program("server_error", count=2, model=PRIMARY)
        for n in "12":  # both answered by the free fallback: degraded, $0
            with task.step(n):
                assert ask(c, f"step {n}", max_tokens=1).headers["x-tollhouse-trust"] == "degraded"
        assert task.verify("1")["verified"] is True  # $1 held, $1 spent: the whole budget
        refused = api(gw, "POST", "/tasks/budgeted/steps/2/verify")
    assert refused.status_code == 402
    assert "budget_daily_usd" in refused.json()["error"]["message"]
    rows = gw.rows()
    assert sum(float(r["cost_usd"]) for r in rows) == 1.0
    assert len(rows) == 3  # two steps and one re-run: the refused one never went out


def test_two_projects_task_ids_never_meet(gw: Harness, faults: Simulator) -> None:
    """The same task id in two projects is two trajectories: taint, gate, verify, approve."""
    with Task("shared", base_url=gw.url, project="acme") as acme:
        faults.program("server_error", count=1, model=PRIMARY)
        with acme.step("1"):
            assert ask(client(gw, acme), "acme's step").headers["x-tollhouse-trust"] == "degraded"
        with Task("shared", base_url=gw.url, project="beta") as beta:
            with beta.step("2"):
                # Beta's own provider key: a virtual key (acme's) would decide the project.
                beta_client = client(gw, beta, key="sk-beta-own")
                assert ask(beta_client, "beta's step").headers["x-tollhouse-trust"] == "full"
            assert acme.gate("merge", irreversible=True)["allow"] is False
            assert beta.gate("merge", irreversible=True)["allow"] is True  # not acme's taint
            assert [s["step"] for s in beta.trajectory()["steps"]] == ["2"]
            assert beta.trajectory()["project"] == "beta"
            for op in ("verify", "approve"):  # beta can't clear (or see) acme's step
                headers = {**beta._api.headers, **operator(gw)}
                response = api(gw, "POST", f"/tasks/shared/steps/1/{op}", headers=headers)
                assert response.status_code == 404, op
        # A caller that names no project (a local tool) can't tell whose "shared" it means.
        unnamed = api(gw, "GET", "/tasks/shared")
        assert unnamed.status_code == 409
        message = unnamed.json()["error"]["message"]
        assert "acme, beta" in message and "X-Tollhouse-Project" in message
        from click.testing import CliRunner

        from tollhouse.cli.main import cli

        which = CliRunner().invoke(cli, ["approve", "shared", "1", "--url", gw.url])
        assert which.exit_code == 1 and "--project" in which.output
        by_cli = ["approve", "shared", "1", "--url", gw.url, "--project", "acme"]
        assert CliRunner().invoke(cli, by_cli).exit_code == 0
        assert acme.gate("merge", irreversible=True)["allow"] is True


def test_a_caller_with_no_project_sees_the_one_project_that_has_the_task(
    gw: Harness, faults: Simulator
) -> None:
    with Task("solo", base_url=gw.url) as task:  # model calls attributed by their key
        faults.program("server_error", count=1, model=PRIMARY)
        with task.step("1"):
            ask(client(gw, task), "one step")
        view = api(gw, "GET", "/tasks/solo").json()  # no key, no project header
    assert (view["project"], view["task"], view["trust"]) == ("acme", "solo", "degraded")


def test_approving_takes_the_operator_token_so_an_agent_cannot_clear_its_own_taint(
    gw: Harness, faults: Simulator, make_gateway: GatewayFactory, simulator: Simulator
) -> None:
    import stat

    with Task("self-serve", base_url=gw.url) as task:
        six_steps(gw, faults, task, {})
        with pytest.raises(TrustError) as refused:
            task.approve("3")  # the agent, without the token
        assert refused.value.status == 401 and "tollhouse approve" in str(refused.value)
        wrong = api(gw, "POST", "/tasks/self-serve/steps/3/approve", headers={OPERATOR: "guess"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["type"] == "operator_token_required"
        assert task.gate("deploy", irreversible=True)["allow"] is False  # still held
        assert task.approve("3", operator_token=token(gw))["task_trust"] == "full"
    where = gw.settings.trust.resolved_operator_token_file()
    assert stat.S_IMODE(where.stat().st_mode) == 0o600 and where.read_text().strip() == token(gw)
    open_gw = make_gateway(trust_config(simulator.url, approval="open"))
    with Task("open", base_url=open_gw.url) as task:
        six_steps(open_gw, simulator, task, {})
        assert task.approve("3")["task_trust"] == "full"  # as configured: anyone may


def test_the_cli_says_where_the_operator_token_should_be(gw: Harness, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from tollhouse.cli.main import cli

    config = tmp_path / "elsewhere.toml"
    config.write_text(f'[trust]\noperator_token_file = "{tmp_path / "missing.token"}"\n')
    args = ["approve", "t", "1", "--url", gw.url, "--config", str(config)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "missing.token" in result.output and "gateway's user" in result.output
