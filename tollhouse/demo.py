"""``tollhouse demo``: the simulator, the gateway and the real SDKs, in one command.

Two projects share one gateway: ``acme`` uses a virtual key, ``globex``
names itself in a header and tags its calls. Every call is metered; the
report at the end is read from the ledger, and its total is checked against
what the simulator billed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from tollhouse.app import GATEWAY, create_app
from tollhouse.ledger.report import render, summarize
from tollhouse.ledger.store import connect
from tollhouse.settings import Settings, parse_settings
from tollhouse.simulator import Simulator, SimulatorSettings
from tollhouse.testing import BackgroundServer

ACME_KEY = "th-acme-demo"
LONG_CONTEXT = "You are a careful assistant for a logistics company. " * 400


def demo_settings(sim_url: str) -> Settings:
    """A config whose providers all live in the simulator."""
    return parse_settings(
        {
            "providers": [
                {
                    "name": "openai",
                    "kind": "openai",
                    "base_url": f"{sim_url}/openai/v1",
                    "api_key_env": "TOLLHOUSE_DEMO_KEY",
                },
                {
                    "name": "anthropic",
                    "kind": "anthropic",
                    "base_url": f"{sim_url}/anthropic",
                    "api_key_env": "TOLLHOUSE_DEMO_KEY",
                },
                {
                    "name": "gemini",
                    "kind": "gemini",
                    "base_url": f"{sim_url}/gemini",
                    "api_key_env": "TOLLHOUSE_DEMO_KEY",
                },
                {
                    "name": "xai",
                    "kind": "xai",
                    "base_url": f"{sim_url}/xai/v1",
                    "api_key_env": "TOLLHOUSE_DEMO_KEY",
                },
            ],
            "projects": {"acme": {"keys": [ACME_KEY]}},
        },
        source="(demo)",
    )


@contextmanager
def running(workdir: Path) -> Iterator[tuple[Simulator, BackgroundServer]]:
    with Simulator(SimulatorSettings(bill_path=workdir / "bill.jsonl")) as sim:
        settings = demo_settings(sim.url)
        gateway = BackgroundServer(
            lambda: create_app(settings, ledger_path=workdir / "ledger.db"),
            handler_cancellation=True,
        )
        with gateway:
            yield sim, gateway


def run_demo(*, keep: bool = False, echo: Callable[[str], Any] = print) -> Decimal:
    """Run the whole demo; return the ledger's total cost."""
    workdir = Path(tempfile.mkdtemp(prefix="tollhouse-demo-"))
    # The gateway's own "provider key": the simulator accepts anything.
    os.environ.setdefault("TOLLHOUSE_DEMO_KEY", "sk-demo-simulated")
    try:
        with running(workdir) as (sim, gateway):
            echo(f"Simulator on {sim.url}, tollhouse on {gateway.url}\n")
            drive(gateway.url, echo)
            assert gateway.app is not None
            gateway.call(gateway.app[GATEWAY].settle())
            billed = sum(
                (Decimal(b["cost_usd"]) for b in sim.bills() if b.get("cost_usd")), Decimal(0)
            )
        with connect(workdir / "ledger.db", readonly=True) as conn:
            rows = summarize(conn, ["project", "model"])
        echo("\n" + render(rows, ["project", "model"], "table"))
        total = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
        verdict = "match" if total == billed else "DIFFER"
        echo(f"\nLedger total ${total} vs simulator bill ${billed}: {verdict}")
        if keep:
            ledger = workdir / "ledger.db"
            echo(f"Ledger kept at {ledger}: tollhouse report --ledger {ledger}")
        return total
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def drive(base: str, echo: Callable[[str], Any]) -> None:
    """A small mixed workload from the official SDKs."""
    import anthropic
    import openai
    from google import genai
    from google.genai import types

    globex = {"X-Tollhouse-Project": "globex", "X-Tollhouse-Tag-Purpose": "bugfix"}
    oa = openai.OpenAI(base_url=f"{base}/v1", api_key=ACME_KEY, max_retries=0)
    an = anthropic.Anthropic(base_url=base, api_key=ACME_KEY, max_retries=0)
    gx = openai.OpenAI(
        base_url=f"{base}/v1", api_key="sk-globex-own-key", default_headers=globex, max_retries=0
    )
    gm = genai.Client(
        api_key="globex-gemini-key", http_options=types.HttpOptions(base_url=base, headers=globex)
    )

    r = oa.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Plan a route"}]
    )
    echo(f"acme    openai chat       {r.model}: {r.usage.total_tokens if r.usage else '?'} tokens")
    stream = oa.chat.completions.create(
        model="gpt-4o", stream=True, messages=[{"role": "user", "content": "Stream a haiku"}]
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    echo(f"acme    openai stream     gpt-4o: {len(text)} chars (usage metered though not asked)")
    for turn in ("first", "second"):
        m = an.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=64,
            system=[{"type": "text", "text": LONG_CONTEXT, "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": f"{turn} question"}],
        )
        echo(
            f"acme    anthropic         {m.model}: cache write "
            f"{m.usage.cache_creation_input_tokens}, read {m.usage.cache_read_input_tokens}"
        )
    with an.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "Stream please"}],
    ) as s:
        final = s.get_final_message()
    echo(f"acme    anthropic stream  {final.model}: {final.usage.output_tokens} output tokens")
    resp = gx.responses.create(
        model="gpt-5-mini", input="Find the bug", reasoning={"effort": "low"}
    )
    echo(
        f"globex  openai responses  {resp.model}: reasoning "
        f"{resp.usage.output_tokens_details.reasoning_tokens if resp.usage else '?'}"
    )
    r = gx.chat.completions.create(
        model="xai/grok-3-mini", messages=[{"role": "user", "content": "Explain the fix"}]
    )
    echo(f"globex  xai               {r.model}: billed by provider")
    g = gm.models.generate_content(model="gemini-2.5-flash", contents="Summarise the fix")
    echo(
        f"globex  gemini            {g.model_version}: "
        f"{g.usage_metadata.total_token_count if g.usage_metadata else '?'} tokens"
    )
    chunks = list(gm.models.generate_content_stream(model="gemini-2.5-flash", contents="Stream it"))
    echo(f"globex  gemini stream     {len(chunks)} chunks")
