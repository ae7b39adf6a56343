"""What a fused model costs against one frontier call, at the simulator's list prices.

Offline: the provider simulator stands in for every provider (list prices from
genai-prices, its own token arithmetic, answers of ``--answer-tokens`` tokens
whatever the model). The same question goes once to a fused model (the
budget preset: three budget models, a budget judge writing the answer) and
once to a single frontier model; the ledger's rows and ``fusion_calls`` give
each call's cost. Quality is not measured here (see OpenRouter's DRACO
numbers); only what the panel costs.

    .venv/bin/python bench/fusion_cost.py
    .venv/bin/python bench/fusion_cost.py --answer-tokens 800 --frontier anthropic/claude-opus-4-1
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai

from tollhouse.app import GATEWAY, create_app
from tollhouse.settings import parse_settings
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import BackgroundServer

PANEL = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"]
JUDGE = "gemini/gemini-2.5-flash"
QUESTION = (
    "Our service recomputes a 2 MB report on every request. Should we cache it, and how "
    "would you invalidate the cache when the underlying data changes? " * 4
)


def config(sim: str, frontier: str) -> dict[str, Any]:
    def provider(name: str, kind: str, path: str) -> dict[str, str]:
        return {"name": name, "kind": kind, "base_url": sim + path, "api_key_env": "SIM_KEY"}

    return {
        "providers": [
            provider("openai", "openai", "/openai/v1"),
            provider("anthropic", "anthropic", "/anthropic"),
            provider("gemini", "gemini", "/gemini"),
        ],
        "models": {
            "council-budget": {"panel": PANEL, "judge": JUDGE},
            "frontier": {"chain": [frontier]},  # any provider, translated for this client
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answer-tokens", type=int, default=400)
    parser.add_argument("--frontier", default="openai/gpt-4o")
    args = parser.parse_args()
    os.environ["SIM_KEY"] = "sk-sim"
    work = Path(tempfile.mkdtemp())
    sim_settings = SimulatorSettings(
        bill_path=work / "bills.jsonl", default_output_tokens=args.answer_tokens
    )
    with Simulator(sim_settings) as sim:
        settings = parse_settings(config(sim.url, args.frontier))
        ledger = work / "ledger.db"
        server = BackgroundServer(lambda: create_app(settings, ledger_path=ledger)).start()
        try:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
            ask = [{"role": "user", "content": QUESTION}]
            fused = client.chat.completions.with_raw_response.create(
                model="council-budget", messages=ask
            )
            single = client.chat.completions.with_raw_response.create(
                model="frontier", messages=ask
            )
            assert server.app is not None
            server.call(server.app[GATEWAY].settle())
        finally:
            server.stop()
    report(ledger, fused.headers["x-tollhouse-request-id"], single.headers, args)


def report(ledger: Path, fused_id: str, single: Any, args: argparse.Namespace) -> None:
    conn = sqlite3.connect(ledger)
    print(f"answers of {args.answer_tokens} tokens; simulator list prices (genai-prices)\n")
    print(f"{'call':<8} {'model':<34} {'in':>6} {'out':>6} {'cost USD':>12}")
    for role, provider, model, inp, out, cost in conn.execute(
        "SELECT role, provider, model, input_tokens, output_tokens, cost_usd "
        "FROM fusion_calls WHERE request_id = ? ORDER BY n",
        (fused_id,),
    ):
        print(f"{role:<8} {provider + '/' + model:<34} {inp:>6} {out:>6} {cost:>12}")
    fused_cost = Decimal(
        conn.execute("SELECT cost_usd FROM requests WHERE request_id = ?", (fused_id,)).fetchone()[
            0
        ]
    )
    row = conn.execute(
        "SELECT input_tokens, output_tokens, cost_usd FROM requests WHERE request_id = ?",
        (single["x-tollhouse-request-id"],),
    ).fetchone()
    print(f"{'fused':<8} {'council-budget (one ledger row)':<34} {'':>6} {'':>6} {fused_cost:>12}")
    print(f"{'single':<8} {args.frontier:<34} {row[0]:>6} {row[1]:>6} {row[2]:>12}")
    print(f"\nfused / single: {fused_cost / Decimal(row[2]):.2f}")


if __name__ == "__main__":
    main()
