"""What the simulator charges for a call, and the JSONL file it writes bills to.

One line per served generation request (see :func:`bill_line`)::

    {"ts": "2026-...+00:00", "flavor": "openai", "dialect": "openai-chat",
     "id": "chatcmpl-...", "request_id": "req_...", "path": "/openai/v1/chat/completions",
     "model": "gpt-4o-mini", "stream": false, "status": 200, "complete": true,
     "error": null, "auth": "bearer", "saw_tollhouse_headers": false,
     "usage": {"input_tokens": 1200, "cached_input_tokens": 1152,
               "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
               "output_tokens": 16, "reasoning_tokens": 0},
     "cost_usd": "0.0001234"}

Totals contain their parts (genai-prices' conventions). ``cost_usd`` is a
fixed-point decimal string, or null for an unpriced model or the ``compat``
flavor; error responses bill ``"0"`` with zero usage.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices

from .wire import decimal_text


@dataclass(frozen=True, slots=True)
class Tally:
    """Token usage of one call; totals include their parts."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_input_tokens - self.cache_write_tokens

    def with_output(self, output_tokens: int, reasoning_tokens: int) -> Tally:
        return replace(self, output_tokens=output_tokens, reasoning_tokens=reasoning_tokens)


def list_price(tally: Tally, model: str, provider_id: str, when: datetime) -> Decimal | None:
    """genai-prices' price for ``tally``; None when the model is unknown."""
    usage = genai_prices.Usage(
        input_tokens=tally.input_tokens,
        cache_read_tokens=tally.cached_input_tokens,
        cache_write_tokens=tally.cache_write_tokens,
        cache_write_1h_tokens=tally.cache_write_1h_tokens,
        output_tokens=tally.output_tokens,
    )
    try:
        calc = genai_prices.calc_price(
            usage, model, provider_id=provider_id, genai_request_timestamp=when
        )
    except LookupError:
        return None
    total: Decimal = calc.total_price
    return total


def bill_line(*, tally: Tally, cost: Decimal | None, **fields: Any) -> dict[str, Any]:
    """A bill record: ``fields`` (ts, flavor, dialect, id, ...) plus usage and cost."""
    cost_text = decimal_text(cost) if cost is not None else None
    return {**fields, "usage": asdict(tally), "cost_usd": cost_text}


class BillWriter:
    """Appends bill lines to a JSONL file, flushed line by line.

    Writes are small synchronous appends (well under a millisecond); the line
    is on disk before the response's last byte leaves, so a client that has
    its whole response can read its bill at once.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, line: dict[str, Any]) -> None:
        if self.path is None:
            return
        text = json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()

    def truncate(self) -> None:
        if self.path is not None:
            with self._lock:
                self.path.write_text("", encoding="utf-8")

    def read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        with self._lock:
            text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
