"""Keep an agent honest in a few lines: label its model calls, gate what it can't undo.

A :class:`Task` labels every call an openai or anthropic client makes
(through an httpx event hook, so any SDK built on httpx works) with
``X-Tollhouse-Task`` / ``-Step`` / ``-Inputs``, and wraps the gate and the
idempotent actions API::

    import openai
    from tollhouse.agent import Held, Task

    with Task("refund-4711", base_url="http://127.0.0.1:4141") as task:
        client = openai.OpenAI(base_url=task.base_url + "/v1", http_client=task.http_client())
        with task.step("read-ticket"):
            client.chat.completions.create(model="smart", messages=[...])
        try:
            refund = task.run_once("refund", {"order": 4711}, issue_refund, irreversible=True)
        except Held as held:
            print(held.decision["reasons"])   # verify or approve the tainted steps first

Needs ``httpx2`` (installed with the openai and anthropic SDKs).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx2 as httpx

DEFAULT_URL = "http://127.0.0.1:4141"
T = TypeVar("T")


class TrustError(Exception):
    """The gateway refused a trust call; ``status`` and ``message`` say why."""

    def __init__(self, status: int, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.body = status, message, body


class Held(TrustError):
    """The gate held an irreversible action: ``decision`` has ``tainted_by`` and ``reasons``."""

    @property
    def decision(self) -> dict[str, Any]:
        gate: dict[str, Any] = self.body.get("gate", {})
        return gate


class ActionFailed(Exception):
    """A retry of an action that failed before: it is not run again; ``result`` is what
    the failed run reported (use a new key to try the side effect afresh)."""

    def __init__(self, name: str, result: Any) -> None:
        super().__init__(f"action {name!r} failed before and is not run again: {result!r}")
        self.result = result


class Action:
    """A claimed (or replayed) idempotent action; report its outcome once."""

    def __init__(self, task: Task, body: dict[str, Any], replayed: bool) -> None:
        self.task, self.id, self.replayed = task, str(body["id"]), replayed
        self.status: str = body["status"]
        self.result: Any = body.get("result")
        self.gate: dict[str, Any] = body.get("gate", {})

    def succeeded(self, result: Any = None) -> None:
        self._report("succeeded", result)

    def failed(self, result: Any = None) -> None:
        self._report("failed", result)

    def abandoned(self) -> None:
        """The side effect did not happen: the key may be claimed again."""
        self._report("abandoned", None)

    def _report(self, status: str, result: Any) -> None:
        body = self.task._call("PUT", f"/actions/{self.id}", {"status": status, "result": result})
        self.status, self.result = body["status"], body.get("result")


class Task:
    """One agent task: labels its model calls and asks the gate before it acts."""

    def __init__(
        self,
        task_id: str | None = None,
        *,
        base_url: str = DEFAULT_URL,
        project: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.id = task_id or uuid.uuid4().hex
        self.base_url = base_url.rstrip("/")
        self.project = project
        self._step: str | None = None
        self._inputs: tuple[str, ...] | None = None
        extra = {"X-Tollhouse-Project": project} if project else {}
        self._api = httpx.Client(
            base_url=self.base_url + "/tollhouse/v1",
            headers=extra,
            timeout=timeout,
            trust_env=False,
        )

    # -- labelling model calls
    def headers(self) -> dict[str, str]:
        """The labels for the next model call (also usable as ``extra_headers``)."""
        out = {"X-Tollhouse-Task": self.id}
        if self.project:
            out["X-Tollhouse-Project"] = self.project
        if self._step is not None:
            out["X-Tollhouse-Step"] = self._step
        if self._inputs is not None:
            out["X-Tollhouse-Inputs"] = ",".join(self._inputs)
        return out

    def label(self, request: httpx.Request) -> None:
        """An httpx ``request`` event hook."""
        request.headers.update(self.headers())

    def http_client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for an SDK (``http_client=``) whose calls carry the labels."""
        hooks = kwargs.pop("event_hooks", {})
        hooks = {**hooks, "request": [*hooks.get("request", []), self.label]}
        return httpx.Client(event_hooks=hooks, **kwargs)

    @contextmanager
    def step(self, step_id: str, inputs: Iterable[str] | None = None) -> Iterator[None]:
        """Calls inside are step ``step_id``; ``inputs``: the steps it read (default: all)."""
        saved = self._step, self._inputs
        self._step, self._inputs = step_id, None if inputs is None else tuple(inputs)
        try:
            yield
        finally:
            self._step, self._inputs = saved

    # -- the gate and actions
    def gate(
        self, action: str, *, irreversible: bool, inputs: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """``{allow, trust, tainted_by, reasons}`` for an action of this task."""
        body: dict[str, Any] = {"task": self.id, "action": action, "irreversible": irreversible}
        if inputs is not None:
            body["inputs"] = list(inputs)
        return self._call("POST", "/gate", body)

    def action(
        self, name: str, payload: Any, *, irreversible: bool, key: str | None = None
    ) -> Action:
        """Claim an action (the gate first). Raises :class:`Held`; a replay is
        an :class:`Action` with ``replayed`` set and the recorded ``result``."""
        key = key or self._key(name, payload)
        body = {"task": self.id, "name": name, "payload": payload, "irreversible": irreversible}
        response = self._api.post("/actions", json=body, headers={"Idempotency-Key": f'"{key}"'})
        data = self._json(response)
        return Action(self, data, response.headers.get("Idempotent-Replayed") == "true")

    def run_once(
        self,
        name: str,
        payload: Any,
        fn: Callable[[], T],
        *,
        irreversible: bool,
        key: str | None = None,
    ) -> T | Any:
        """Run ``fn`` once for this action: a retry returns the recorded result instead,
        or raises :class:`ActionFailed` when the recorded run failed."""
        act = self.action(name, payload, irreversible=irreversible, key=key)
        if act.replayed:
            if act.status == "failed":  # the failure's report is not a result to act on
                raise ActionFailed(name, act.result)
            return act.result
        try:
            result = fn()
        except BaseException as exc:
            act.failed({"error": repr(exc)})
            raise
        act.succeeded(result)
        return result

    # -- clearing taint
    def verify(self, step_id: str, **options: Any) -> dict[str, Any]:
        """Re-run a step on the primary; ``accept=True`` or ``min_similarity=0.8``."""
        return self._call("POST", f"/tasks/{self.id}/steps/{step_id}/verify", options)

    def approve(
        self, step_id: str, by: str = "agent", *, operator_token: str | None = None
    ) -> dict[str, Any]:
        """A person's approval: it takes the operator token (``tollhouse approve`` has it);
        an agent should :meth:`verify` instead."""
        headers = {"X-Tollhouse-Operator": operator_token} if operator_token else None
        path = f"/tasks/{self.id}/steps/{step_id}/approve"
        return self._call("POST", path, {"by": by}, headers=headers)

    def trajectory(self) -> dict[str, Any]:
        return self._call("GET", f"/tasks/{self.id}", None)

    # -- plumbing
    def _key(self, name: str, payload: Any) -> str:
        canonical = json.dumps([self.id, name, payload], sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def _call(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return self._json(self._api.request(method, path, json=body, headers=headers))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        data: dict[str, Any] = response.json()
        if response.status_code >= 400:
            message = str(data.get("error", {}).get("message", response.text))
            cls = Held if response.status_code == 423 else TrustError
            raise cls(response.status_code, message, data)
        return data

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
