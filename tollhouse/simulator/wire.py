"""Byte-level helpers: exact JSON numbers, SSE framing, provider-style ids.

``Decimal`` values are written as JSON numbers with every digit kept, so a
client that parses with ``parse_float=Decimal`` reads back exactly the
amount the simulator billed (OpenRouter's ``usage.cost``).

>>> dumps({"cost": Decimal("0.00000075")})
'{"cost":0.00000075}'
>>> sse({"a": 1}, event="ping")
b'event: ping\\ndata: {"a":1}\\n\\n'
"""

from __future__ import annotations

import json
import re
import secrets
import string
from decimal import Decimal
from typing import Any

_MARK = "\u2063dec:"
_MARKED = re.compile('"' + _MARK + r'([-0-9.]+)"')
_ALNUM = string.ascii_letters + string.digits
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def decimal_text(value: Decimal) -> str:
    """Fixed-point text for ``value`` (never an exponent)."""
    return format(value, "f")


def _mark_decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return _MARK + decimal_text(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(obj: Any) -> str:
    """Compact JSON with ``Decimal`` written as exact numbers."""
    text = json.dumps(obj, default=_mark_decimal, separators=(",", ":"), ensure_ascii=False)
    return _MARKED.sub(r"\1", text) if _MARK in text else text


def sse(data: Any, *, event: str | None = None, sep: str = "\n") -> bytes:
    """One server-sent event; ``data`` is JSON-encoded unless already a string."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}{sep}" if event else ""
    return f"{head}data: {payload}{sep}{sep}".encode()


def random_id(prefix: str, length: int, alphabet: str = _ALNUM) -> str:
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def chat_id() -> str:
    return random_id("chatcmpl-", 29)


def hex_id(prefix: str) -> str:
    """OpenAI Responses style: ``resp_`` / ``msg_`` / ``rs_`` + 48 hex digits."""
    return prefix + secrets.token_hex(24)


def anthropic_id(prefix: str = "msg_") -> str:
    return random_id(prefix + "01", 22, _BASE58)


def gemini_response_id() -> str:
    return random_id("", 23, _ALNUM + "-_")


def request_id() -> str:
    return random_id("req_", 24)


def fingerprint() -> str:
    return "fp_" + secrets.token_hex(5)
