"""A fake LLM provider speaking four wire dialects, with exact, deterministic billing.

The gateway's tests point it at this simulator and compare the gateway's
ledger with the bills the simulator writes (one JSONL line per generation
request, see :mod:`.billing`).

Flavors are path prefixes: ``/openai``, ``/xai``, ``/openrouter``,
``/compat`` (OpenAI Chat Completions and Responses), ``/anthropic``
(Messages) and ``/gemini`` (generateContent). Unprefixed paths go to the
natural flavor. Base URLs for clients::

    OpenAI-style  http://127.0.0.1:PORT/{openai,xai,openrouter,compat}/v1
    Anthropic     http://127.0.0.1:PORT/anthropic
    Gemini        http://127.0.0.1:PORT/gemini

Tokens (see :mod:`.tokens`): every text part costs ``ceil(utf-8 bytes / 4)``
tokens, summed over system/instructions, messages and tool definitions;
images cost a flat 85, documents, audio and files 1,500 per started 4 KiB
of their data (a page); other structured parts (tool calls,
tool results without text...) cost their canonical JSON's tokens. The answer
is ``default_output_tokens`` tokens of 4-byte words, or fewer when the
request's max-tokens field is smaller (finish reason "length"), or the
``x-sim-output-tokens`` header's count; OpenAI's ``n`` bills that many
answers. Reasoning requests (and reasoning
models by name) add 2x the answer's tokens of reasoning, capped by a
thinking budget; ``x-sim-reasoning-tokens`` overrides. Caching: see
:mod:`.prompt`. Faults: see :mod:`.faults` and :mod:`.serve`. Quotas
(``rpm``/``tpm`` per flavor and model, 429s like the real provider's,
counts at ``GET /_sim/stats``): see :mod:`.quota`.

>>> with Simulator(SimulatorSettings(default_output_tokens=8)) as sim:
...     client = openai.OpenAI(base_url=sim.url + "/xai/v1", api_key="x", max_retries=0)
...     sim.program("rate_limit,retry_after=3", count=1)
...     ...
...     sim.bills()

>>> clock = FakeClock()
>>> with Simulator(SimulatorSettings(rpm=5), clock=clock) as sim:
...     ...  # 5 requests answer 200, the 6th 429 with retry-after 12
...     clock.advance(12)  # and now one more fits
...     sim.stats()["rate_limited"]
"""

from __future__ import annotations

from .app import create_app
from .faults import Fault, FaultSpecError, parse_fault
from .quota import FakeClock, QuotaLimiter
from .server import Simulator, run_simulator
from .settings import SimulatorSettings

__all__ = [
    "FakeClock",
    "Fault",
    "FaultSpecError",
    "QuotaLimiter",
    "Simulator",
    "SimulatorSettings",
    "create_app",
    "parse_fault",
    "run_simulator",
]
