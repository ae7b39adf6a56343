"""What a budget costs a request: reserving its worst case and settling it, in µs.

Times the budget gate alone (no sockets: the sans-io part of the request
path a budget adds) for three requests: a small chat, a chat with tool
definitions and an image, and a 20 kB prompt; for a budgeted project and for
one without a budget (which must pay only a dictionary lookup). Run it on
two checkouts to compare:

    .venv/bin/python bench/budget_reserve.py
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/budget_reserve.py

Prints µs per request (best of 5 rounds of 2,000). Wall clock drifts on a
shared box; for a deterministic count, run one case N times under callgrind
and subtract a run of 0 (instructions per request = difference / N):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/budget_reserve.py --count "small chat" budgeted 2000
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import timeit
from decimal import Decimal
from typing import Any

from tollhouse.budgets.gate import BudgetGate
from tollhouse.gateway.routing import Router
from tollhouse.pricing import Pricer
from tollhouse.providers import build_providers
from tollhouse.settings import parse_settings

IMAGE = "data:image/png;base64," + "iVBORw0KGgo" + "A" * 40_000
TOOL = {"type": "function", "function": {"name": "search", "parameters": {"q": "string"}}}
PAYLOADS: dict[str, dict[str, Any]] = {
    "small chat": {
        "model": "gpt-4o-mini",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hello"}],
    },
    "tools + image": {
        "model": "gpt-4o-mini",
        "max_tokens": 256,
        "tools": [TOOL] * 4,
        "messages": [
            {"role": "system", "content": "You are terse. " * 20},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in it?"},
                    {"type": "image_url", "image_url": {"url": IMAGE}},
                ],
            },
        ],
    },
    "20 kB prompt": {
        "model": "gpt-4o-mini",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "word " * 4_000}],
    },
}


def main() -> None:
    import tollhouse

    print("tollhouse from", tollhouse.__file__)
    settings = parse_settings(
        {
            "providers": [{"name": "openai", "kind": "openai", "base_url": "http://127.0.0.1:1"}],
            "projects": {"acme": {"budget_daily_usd": 1_000_000, "budget_mode": "hard"}},
        }
    )
    gate = BudgetGate.from_settings(settings, Pricer({}))
    assert gate is not None
    router = Router(build_providers(settings.providers), {})
    routes = router.candidates("gpt-4o-mini", "openai-chat")

    # The gateway has the body already; an older checkout's gate doesn't take it.
    takes_body = "body" in inspect.signature(gate.hold).parameters

    def hold(project: str, payload: dict[str, Any], body: bytes) -> Any:
        if takes_body:
            return gate.hold(project, routes, payload, None, body)  # type: ignore[call-arg]
        return gate.hold(project, routes, payload)

    def budgeted(payload: dict[str, Any], body: bytes) -> None:
        hold_ = hold("acme", payload, body)
        assert hold_ is not None and hold_.amount > 0
        gate.settle(hold_, Decimal("0.0001"))

    def unbudgeted(payload: dict[str, Any], body: bytes) -> None:
        assert hold("other", payload, body) is None

    if len(sys.argv) == 5 and sys.argv[1] == "--count":
        payload = PAYLOADS[sys.argv[2]]
        fn = budgeted if sys.argv[3] == "budgeted" else unbudgeted
        body = json.dumps(payload).encode()
        fn(payload, body)  # warm: the first price loads genai-prices' data (a one-off)
        for _ in range(int(sys.argv[4])):
            fn(payload, body)
        return
    for name, payload in PAYLOADS.items():
        body = json.dumps(payload).encode()
        for label, fn in (("budgeted", budgeted), ("unbudgeted", unbudgeted)):
            call = functools.partial(fn, payload, body)
            best = min(timeit.repeat(call, number=2_000, repeat=5)) / 2_000
            print(f"{name:14} {label:10} {best * 1e6:8.2f} µs/request")


if __name__ == "__main__":
    main()
