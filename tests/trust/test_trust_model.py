"""Model-based tests of trust: random agents against a reference model (issue 13).

A hypothesis ``RuleBasedStateMachine`` drives the real gateway (the openai SDK
for model calls, HTTP for the trust endpoints) with random sequences of
labelled steps (numbered, unnumbered, re-runs, declared inputs, typos),
fallback answers (the simulator fails the primary), cache hits, verifies,
approvals, gates and idempotent claims with their outcomes. After every step the
gateway's answers must equal those of :class:`Model`, a plain reference
written from the semantics in ``tollhouse/trust/trajectory.py`` (a forward
walk, unlike the gateway's backward one).

Run on one instance (SQLite) and on three sharing Redis and a Postgres ledger, every request to an
instance drawn at random. The profile is the suite's "tollhouse" one
(derandomised); each machine is bounded to a few hundred requests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.cluster.conftest import prefix, state_config  # noqa: F401  (the Redis key prefix)
from tests.conftest import ACME_KEY, KEY_ENV, PROVIDER_KEY, GatewayFactory, Harness
from tests.trust.test_trust_e2e import PRIMARY, token, trust_config
from tollhouse.app import create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator
from tollhouse.testing import BackgroundServer

PROJECT = {"X-Tollhouse-Project": "acme"}
TASKS = ("a", "b", "never")  # "never" gets no model call: the gate's unknown task
STEP_IDS = ("1", "2", "3", "plan")
INPUT_IDS = ("1", "2", "3", "4", "plan", "typo")  # "4" only by numbering, "typo" never
APPROVED, VERIFIED = "approved", "verified"
BOUNDS = settings(max_examples=12, stateful_step_count=30)


# -- the reference model
@dataclass
class MStep:
    id: str
    seq: int
    reads: frozenset[str]  # declared, or every other step there when this run was recorded
    declared: tuple[str, ...] | None
    degraded: bool
    kept_at: int  # the instance keeping its request for verify (degraded runs only), or -1
    cleared: str | None = None


@dataclass
class MTask:
    steps: dict[str, MStep] = field(default_factory=dict)

    def next_id(self) -> str:
        n = len(self.steps) + 1
        while str(n) in self.steps:
            n += 1
        return str(n)

    def record(
        self, step_id: str | None, declared: tuple[str, ...] | None, degraded: bool, at: int
    ) -> MStep:
        sid = step_id or self.next_id()
        old = self.steps.get(sid)
        reads = frozenset(declared) if declared is not None else frozenset(self.steps) - {sid}
        seq = old.seq if old is not None else len(self.steps)
        step = self.steps[sid] = MStep(sid, seq, reads, declared, degraded, at if degraded else -1)
        return step

    def tainted_by(self, sid: str) -> set[str]:
        """The unverified, unapproved degraded steps reachable from ``sid``, approvals cut."""
        out: set[str] = set()
        seen: set[str] = set()
        todo = [sid]
        while todo:
            s = self.steps.get(todo.pop())
            if s is None or s.id in seen or s.cleared == APPROVED:
                continue
            seen.add(s.id)
            if s.degraded and s.cleared is None:
                out.add(s.id)
            todo.extend(s.reads)
        return out

    def ordered(self, ids: set[str]) -> list[str]:
        return sorted(ids, key=lambda i: self.steps[i].seq)

    def gate(self, inputs: list[str] | None, irreversible: bool) -> tuple[int, Any]:
        """(status, (allow, trust, tainted_by)) as the gate must answer."""
        if inputs is not None and any(i not in self.steps for i in inputs):
            return 400, None
        if not self.steps:
            return 200, (not irreversible, "unknown", [])
        tainted: set[str] = set()
        for sid in inputs if inputs is not None else list(self.steps):
            tainted |= self.tainted_by(sid)
        trust = "degraded" if tainted else "full"
        return 200, (not (irreversible and tainted), trust, self.ordered(tainted))


@dataclass
class MClaim:
    fingerprint: tuple[Any, ...]
    id: str
    status: str = "in_flight"


# -- the machine
class TrustMachine(RuleBasedStateMachine):
    """Subclassed per run with ``gateways`` and ``sim`` set."""

    gateways: list[Harness]
    sim: Simulator

    def __init__(self) -> None:
        super().__init__()
        self.run = uuid.uuid4().hex[:8]  # this example's tasks and keys are its own
        self.tasks = {t: MTask() for t in TASKS}
        self.claims: dict[str, MClaim] = {}
        self.cache_warm = False  # a fresh cached answer may be stored (the put is async)
        self.touched = "a"
        httpx.delete(f"{self.sim.url}/_sim/faults", timeout=10)  # none left by a failed example
        self.clients = [
            openai.OpenAI(base_url=f"{g.url}/v1", api_key=ACME_KEY, max_retries=0)
            for g in self.gateways
        ]

    def teardown(self) -> None:
        for c in self.clients:
            c.close()

    def task_id(self, task: str) -> str:
        return f"{task}-{self.run}"

    def api(self, at: int, method: str, path: str, **kw: Any) -> httpx.Response:
        url = f"{self.gateways[at].url}/tollhouse/v1{path}"
        headers = {**PROJECT, **kw.pop("headers", {})}
        return httpx.request(method, url, timeout=60, headers=headers, **kw)

    # -- model calls
    @rule(
        task=st.sampled_from(TASKS[:2]),
        step=st.none() | st.sampled_from(STEP_IDS),
        inputs=st.none() | st.lists(st.sampled_from(INPUT_IDS), max_size=3, unique=True),
        how=st.sampled_from(["fresh", "fresh", "fallback", "cache"]),
        stream=st.booleans(),
        at=st.integers(0, 2),
    )
    def call(
        self,
        task: str,
        step: str | None,
        inputs: list[str] | None,
        how: str,
        stream: bool,
        at: int,
    ) -> None:
        at %= len(self.gateways)
        # A streamed step is recorded once its stream has ended: other instances may ask
        # before that, so streams run on one instance only (whose gate waits for it).
        stream = stream and how != "cache" and len(self.gateways) == 1
        model, self.touched = self.tasks[task], task
        headers = {"X-Tollhouse-Task": self.task_id(task)}
        if step is not None:
            headers["X-Tollhouse-Step"] = step
        if inputs is not None:
            headers["X-Tollhouse-Inputs"] = ",".join(inputs)
        known = inputs is None or all(i in model.steps for i in inputs)
        text = f"step of {self.run}" if how != "cache" else f"cached {self.run}"
        if how == "cache":
            headers["X-Tollhouse-Cache"] = "use"
        elif how == "fallback" and known:  # only a call that reaches upstream uses the fault
            self.sim.program("server_error", count=1, model=PRIMARY)
        create = self.clients[at].chat.completions.with_raw_response.create
        messages: Any = [{"role": "user", "content": text}]
        if not known:
            with pytest.raises(openai.BadRequestError, match="has no step"):
                create(model="smart", messages=messages, extra_headers=headers)
            return
        raw: Any = create(model="smart", messages=messages, extra_headers=headers, stream=stream)
        if stream:
            assert [c for c in raw.parse() if c.choices]  # the whole stream, to its end
        hit = raw.headers.get("x-tollhouse-cache") == "hit"
        if hit:
            assert self.cache_warm, "a cache hit before any fresh cached answer"
        degraded = how == "fallback" or hit
        assert raw.headers["x-tollhouse-trust"] == ("degraded" if degraded else "full")
        if how == "cache":
            self.cache_warm = True
        model.record(step, None if inputs is None else tuple(inputs), degraded, at)

    # -- clearing
    @rule(task=st.sampled_from(TASKS), step=st.sampled_from(STEP_IDS), at=st.integers(0, 2))
    def verify(self, task: str, step: str, at: int) -> None:
        at %= len(self.gateways)
        model, self.touched = self.tasks[task], task
        path = f"/tasks/{self.task_id(task)}/steps/{step}/verify"
        response = self.api(at, "POST", path, json={"accept": True})
        found = model.steps.get(step)
        if found is None:
            assert response.status_code == 404, response.text
            return
        if found.kept_at != at:  # only degraded runs are kept, where they ran, until cleared
            assert response.status_code == 409, response.text
            return
        assert response.status_code == 200, response.text
        assert response.json()["verified"] is True
        found.kept_at = -1
        if found.cleared != APPROVED:  # an approval outranks a later verify
            found.cleared = VERIFIED

    @rule(task=st.sampled_from(TASKS), step=st.sampled_from(STEP_IDS), at=st.integers(0, 2))
    def approve(self, task: str, step: str, at: int) -> None:
        at %= len(self.gateways)
        model, self.touched = self.tasks[task], task
        path = f"/tasks/{self.task_id(task)}/steps/{step}/approve"
        operator = {"X-Tollhouse-Operator": token(self.gateways[at])}
        response = self.api(at, "POST", path, json={"by": "ann"}, headers=operator)
        found = model.steps.get(step)
        if found is None:
            assert response.status_code == 404, response.text
            return
        assert response.status_code == 200, response.text
        if found.kept_at == at:
            found.kept_at = -1  # its kept request is dropped there: nothing left to re-run
        found.cleared = APPROVED
        assert response.json()["step_cleared"] == APPROVED

    # -- the gate
    @rule(
        task=st.sampled_from(TASKS),
        inputs=st.none() | st.lists(st.sampled_from(INPUT_IDS), max_size=3, unique=True),
        irreversible=st.booleans(),
        at=st.integers(0, 2),
    )
    def gate(self, task: str, inputs: list[str] | None, irreversible: bool, at: int) -> None:
        self.check_gate(task, inputs, irreversible, at % len(self.gateways))

    def check_gate(self, task: str, inputs: list[str] | None, irreversible: bool, at: int) -> None:
        body: dict[str, Any] = {"task": self.task_id(task), "action": "act"}
        body["irreversible"] = irreversible
        if inputs is not None:
            body["inputs"] = inputs
        response = self.api(at, "POST", "/gate", json=body)
        status, expected = self.tasks[task].gate(inputs, irreversible)
        assert response.status_code == status, (response.text, expected)
        if status == 200:
            got = response.json()
            assert (got["allow"], got["trust"], got["tainted_by"]) == expected, got

    # -- side effects once
    @rule(
        task=st.sampled_from(TASKS),
        key=st.sampled_from(["k1", "k2", "k3"]),
        payload=st.integers(0, 1),
        irreversible=st.booleans(),
        at=st.integers(0, 2),
    )
    def claim(self, task: str, key: str, payload: int, irreversible: bool, at: int) -> None:
        at %= len(self.gateways)
        body = {
            "task": self.task_id(task),
            "name": "act",
            "payload": {"v": payload},
            "irreversible": irreversible,
        }
        idem = {"Idempotency-Key": f'"{key}-{self.run}"'}
        response = self.api(at, "POST", "/actions", json=body, headers=idem)
        fp = (task, payload, irreversible)
        found = self.claims.get(key)
        if found is not None:
            if found.fingerprint != fp:
                assert response.status_code == 422, response.text
            elif found.status == "in_flight":
                assert response.status_code == 409, response.text
            else:
                assert response.status_code == 200, response.text
                assert response.headers["Idempotent-Replayed"] == "true"
                assert (response.json()["id"], response.json()["status"]) == (
                    found.id,
                    found.status,
                )
            return
        _, expected = self.tasks[task].gate(None, irreversible)
        if not expected[0]:
            assert response.status_code == 423, response.text
            assert response.json()["gate"]["tainted_by"] == expected[2]
            assert "step(s) ;" not in response.json()["error"]["message"]
            return
        assert response.status_code == 201, response.text
        self.claims[key] = MClaim(fp, response.json()["id"])

    @rule(
        key=st.sampled_from(["k1", "k2", "k3"]),
        status=st.sampled_from(["succeeded", "failed", "abandoned"]),
        at=st.integers(0, 2),
    )
    def report(self, key: str, status: str, at: int) -> None:
        found = self.claims.get(key)
        if found is None:
            return
        at %= len(self.gateways)
        response = self.api(at, "PUT", f"/actions/{found.id}", json={"status": status})
        if found.status != "in_flight":
            assert response.status_code == 409, response.text  # an outcome is reported once
            return
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        found.status = status
        if status == "abandoned":
            del self.claims[key]  # the side effect did not happen: the key is free again

    # -- after every step
    @invariant()
    def trajectory_matches(self) -> None:
        task, model = self.touched, self.tasks[self.touched]
        at = len(model.steps) % len(self.gateways)
        self.check_gate(task, None, True, at)
        if not model.steps:
            return
        response = self.api(at, "GET", f"/tasks/{self.task_id(task)}")
        assert response.status_code == 200, response.text
        got = [
            (s["step"], s["own"], s["inputs"], s["cleared"], s["tainted_by"])
            for s in response.json()["steps"]
        ]
        want = [
            (
                s.id,
                "degraded" if s.degraded else "full",
                None if s.declared is None else list(s.declared),
                s.cleared,
                model.ordered(model.tainted_by(s.id)),
            )
            for s in sorted(model.steps.values(), key=lambda s: s.seq)
        ]
        assert got == want


def run_machine(gateways: list[Harness], sim: Simulator) -> None:
    machine = type("Machine", (TrustMachine,), {"gateways": gateways, "sim": sim})
    run_state_machine_as_test(machine, settings=BOUNDS)


def test_one_instance_matches_the_model(make_gateway: GatewayFactory, faults: Simulator) -> None:
    run_machine([make_gateway(trust_config(faults.url, unknown_task="hold"))], faults)


def test_three_instances_on_redis_and_postgres_match_the_model(
    faults: Simulator,
    prefix: str,  # noqa: F811  (the fixture imported above)
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As deployed behind a load balancer: trust state on Redis, one Postgres ledger."""
    monkeypatch.setenv(KEY_ENV, PROVIDER_KEY)
    config = trust_config(faults.url, unknown_task="hold")
    config["state"] = state_config(faults.url, prefix)["state"]
    settings = parse_settings(config)
    servers = [
        BackgroundServer(
            lambda: create_app(settings, ledger_path=postgres_url), handler_cancellation=True
        ).start()
        for _ in range(3)
    ]
    try:
        run_machine([Harness(s, Path(postgres_url), settings) for s in servers], faults)
    finally:
        for server in servers:
            server.stop()
