"""An agent that must not refund twice, or on an answer it didn't freshly earn.

Runs without any API key: the provider simulator and the gateway start in
this process. The model ``smart`` is a chain, openai/gpt-4o-mini first and
xai/grok-3-mini as its fallback. Mid-task the simulator fails the primary,
so step 3 is answered by the fallback: the gateway tags it degraded, steps
4 and 5 inherit the taint, and the gate holds the irreversible refund.
Verifying step 3 (a re-run on the primary, compared with chrF) clears it,
and the refund goes through — once, however often the agent retries.

    python examples/trust_agent.py
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai

from tollhouse.agent import Held, Task
from tollhouse.app import GATEWAY, create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import BackgroundServer

PRIMARY, FALLBACK = "gpt-4o-mini", "grok-3-mini"
STEPS = [
    ("read-ticket", "Customer 4711 says the parcel never arrived. What do they want?"),
    ("look-up-order", "Order 4711: 2 items, 64.90 EUR, shipped on 20 November. Summarise."),
    ("decide", "Given the ticket and the order, should we refund, and how much?"),
    ("draft-reply", "Draft the reply to the customer."),
    ("summarise", "Summarise the case for the ledger."),
]


def settings(sim_url: str) -> Any:
    def provider(name: str, path: str) -> dict[str, str]:
        key_env = "TOLLHOUSE_EXAMPLE_KEY"
        return {"name": name, "kind": name, "base_url": sim_url + path, "api_key_env": key_env}

    return parse_settings(
        {
            "providers": [provider("openai", "/openai/v1"), provider("xai", "/xai/v1")],
            "models": {"smart": {"chain": [f"openai/{PRIMARY}", f"xai/{FALLBACK}"]}},
            "capacity": {"max_attempts": 1},
            "trust": {"divergence_sample": 1.0},
        },
        source="(example)",
    )


def run_agent(gateway_url: str, sim: Simulator, echo: Callable[[str], Any]) -> dict[str, Any]:
    refunds: list[str] = []

    def issue_refund() -> dict[str, Any]:
        refunds.append("4711")  # the side effect that must happen once
        return {"refund": "re_4711", "eur": "64.90"}

    out: dict[str, Any] = {}
    with Task("ticket-4711", base_url=gateway_url, project="support") as task:
        client = openai.OpenAI(
            base_url=f"{gateway_url}/v1",
            api_key="th-example",
            max_retries=0,
            http_client=task.http_client(),
        )
        for n, (name, prompt) in enumerate(STEPS, start=1):
            if name == "decide":
                sim.program("server_error", count=1, model=PRIMARY)  # the primary fails now
            with task.step(str(n)):
                raw = client.chat.completions.with_raw_response.create(
                    model="smart", messages=[{"role": "user", "content": prompt}]
                )
            echo(
                f"step {n} {name:<14} served by {raw.headers['x-tollhouse-served-by']:<22} "
                f"trust {raw.headers['x-tollhouse-trust']}"
            )

        try:
            task.run_once(
                "refund", {"order": 4711, "eur": "64.90"}, issue_refund, irreversible=True
            )
        except Held as held:
            out["held"] = held.decision
            echo(f"\ngate: refund HELD, tainted by steps {held.decision['tainted_by']}")
            for reason in held.decision["reasons"]:
                echo(f"  - {reason}")

        for step in out.get("held", {}).get("tainted_by", []):
            verified = task.verify(step)
            out.setdefault("verified", []).append(verified)
            echo(
                f"\nverify step {step}: re-run on {verified['served_by']}, "
                f"similarity {verified['similarity']:.2f} -> verified {verified['verified']}"
            )

        decision = task.gate("refund", irreversible=True)
        out["after"] = decision
        echo(f"gate: refund allow={decision['allow']} trust={decision['trust']}")
        first = task.run_once(
            "refund", {"order": 4711, "eur": "64.90"}, issue_refund, irreversible=True
        )
        retry = task.run_once(
            "refund", {"order": 4711, "eur": "64.90"}, issue_refund, irreversible=True
        )
        echo(f"refund: {first}; a retry replays {retry}; refunds issued: {len(refunds)}")
        out["refunds"], out["first"], out["retry"] = list(refunds), first, retry
    return out


def main(echo: Callable[[str], Any] = print) -> dict[str, Any]:
    os.environ.setdefault("TOLLHOUSE_EXAMPLE_KEY", "sk-simulated")
    with tempfile.TemporaryDirectory(prefix="tollhouse-trust-") as tmp:
        workdir = Path(tmp)
        with Simulator(SimulatorSettings(bill_path=workdir / "bill.jsonl")) as sim:
            config = settings(sim.url)
            server = BackgroundServer(
                lambda: create_app(config, ledger_path=workdir / "ledger.db"),
                handler_cancellation=True,
            )
            with server:
                out = run_agent(server.url, sim, echo)
                assert server.app is not None
                server.call(server.app[GATEWAY].settle())  # the divergence replay, too
                metrics = httpx2.get(f"{server.url}/tollhouse/v1/trust/metrics").json()
        from tollhouse.trust.metrics import render_metrics

        echo("\n" + render_metrics(metrics))
        out["metrics"] = metrics
    return out


if __name__ == "__main__":
    main()
