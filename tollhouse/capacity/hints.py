"""How long a provider asks us to wait, and how much it says is left, from its answer.

Sans-io: wall-clock dates (``retry-after`` as an HTTP date, Anthropic's RFC 3339
resets) are read relative to a ``now`` the caller passes (Unix seconds).

>>> retry_hint(429, {"retry-after-ms": "1500", "retry-after": "2"}, None)
1.5
>>> parse_duration("6m0s"), parse_duration("12ms")
(360.0, 0.012)
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from multidict import CIMultiDict, CIMultiDictProxy

from tollhouse.capacity.classify import error_object

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_ANTHROPIC_KINDS = ("requests", "tokens", "input-tokens", "output-tokens")


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a response's rate-limit headers say is left, and when each budget refills."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    requests_reset_in: float | None = None
    tokens_reset_in: float | None = None
    limit_requests: int | None = None
    limit_tokens: int | None = None

    @property
    def empty(self) -> bool:
        return self.remaining_requests is None and self.remaining_tokens is None


@functools.lru_cache(maxsize=512)
def parse_duration(text: str) -> float | None:
    """A Go duration (``6m0s``, ``1.5s``, ``12ms``), a protobuf one (``22s``), or bare seconds."""
    text = text.strip()
    try:
        return _finite(float(text))
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos else None


def parse_http_date(text: str, now: float) -> float | None:
    """Seconds from ``now`` until an RFC 9110 date (``Wed, 21 Oct 2026 07:28:00 GMT``)."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - now


def parse_rfc3339(text: str, now: float) -> float | None:
    """Seconds from ``now`` until an RFC 3339 time (``2026-01-01T00:00:01Z``)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - now


def retry_hint(
    status: int, headers: Mapping[str, str], body: bytes | None, *, now: float | None = None
) -> float | None:
    """Seconds the provider asks us to wait before trying again; None when nothing says.

    In order: ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date),
    Gemini's ``RetryInfo.retryDelay`` in an error body, then the reset of an
    exhausted budget (OpenAI ``x-ratelimit-reset-*``, Anthropic
    ``anthropic-ratelimit-*-reset``, when the matching remaining is 0).
    ``now`` is Unix time for the dates (default: the system clock). Never negative.
    """
    h = _lower(headers)
    wall = time.time() if now is None else now
    for find in (_retry_after_ms, _retry_after, _body_retry_delay, _exhausted_reset):
        found = find(h, body if status >= 400 else None, wall)
        if found is not None:
            return max(0.0, found)
    return None


def parse_rate_limits(headers: Mapping[str, str], *, now: float | None = None) -> RateLimitInfo:
    """Remaining budgets and their resets (seconds from now), OpenAI's or Anthropic's headers.

    Of Anthropic's token budgets (total, input, output) the smallest remaining counts.
    """
    h = _lower(headers)
    if "x-ratelimit-remaining-requests" in h or "x-ratelimit-remaining-tokens" in h:
        return RateLimitInfo(
            _int(h.get("x-ratelimit-remaining-requests")),
            _int(h.get("x-ratelimit-remaining-tokens")),
            _dur(h.get("x-ratelimit-reset-requests")),
            _dur(h.get("x-ratelimit-reset-tokens")),
            _int(h.get("x-ratelimit-limit-requests")),
            _int(h.get("x-ratelimit-limit-tokens")),
        )
    if not any(k.lower().startswith("anthropic-ratelimit-") for k in h):
        return RateLimitInfo()
    wall = time.time() if now is None else now
    requests = _anthropic_budget(h, "requests", wall)
    tokens = [_anthropic_budget(h, kind, wall) for kind in _ANTHROPIC_KINDS[1:]]
    least = min((t for t in tokens if t[0] is not None), key=lambda t: t[0] or 0, default=None)
    if least is None:
        return RateLimitInfo(requests[0], None, requests[1], None, requests[2])
    return RateLimitInfo(requests[0], least[0], requests[1], least[1], requests[2], least[2])


def _retry_after_ms(h: Mapping[str, str], body: bytes | None, now: float) -> float | None:
    value = _float(h.get("retry-after-ms"))
    return None if value is None else value / 1000


def _retry_after(h: Mapping[str, str], body: bytes | None, now: float) -> float | None:
    text = h.get("retry-after")
    if text is None:
        return None
    seconds = _float(text)
    return seconds if seconds is not None else parse_http_date(text, now)


def _body_retry_delay(h: Mapping[str, str], body: bytes | None, now: float) -> float | None:
    err = error_object(body)
    details = err.get("details") if err else None
    if not isinstance(details, list):
        return None
    for item in details:
        if (
            isinstance(item, dict)
            and str(item.get("@type", "")).endswith("google.rpc.RetryInfo")
            and isinstance(item.get("retryDelay"), str)
        ):
            return parse_duration(item["retryDelay"])
    return None


def _exhausted_reset(h: Mapping[str, str], body: bytes | None, now: float) -> float | None:
    """The longest reset among budgets at zero: all of them must refill before a retry."""
    waits = []
    for kind in ("requests", "tokens"):
        if _int(h.get(f"x-ratelimit-remaining-{kind}")) == 0:
            waits.append(_dur(h.get(f"x-ratelimit-reset-{kind}")))
    for kind in _ANTHROPIC_KINDS:
        remaining, reset, _ = _anthropic_budget(h, kind, now)
        if remaining == 0:
            waits.append(reset)
    known = [w for w in waits if w is not None]
    return max(known) if known else None


_Budget = tuple[int | None, float | None, int | None]  # remaining, reset in, limit


def _anthropic_budget(h: Mapping[str, str], kind: str, now: float) -> _Budget:
    reset = h.get(f"anthropic-ratelimit-{kind}-reset")
    return (
        _int(h.get(f"anthropic-ratelimit-{kind}-remaining")),
        None if reset is None else parse_rfc3339(reset, now),
        _int(h.get(f"anthropic-ratelimit-{kind}-limit")),
    )


def _lower(headers: Mapping[str, str]) -> Mapping[str, str]:
    """Header names compared case-insensitively, whatever mapping the caller has."""
    if isinstance(headers, CIMultiDict | CIMultiDictProxy):
        return headers  # already case-insensitive: no copy on every response
    return {k.lower(): v for k, v in headers.items()}


def _dur(text: str | None) -> float | None:
    return None if text is None else parse_duration(text)


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return _finite(float(text.strip()))
    except ValueError:
        return None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None
