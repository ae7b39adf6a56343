"""Fault specs: what should go wrong with the next request(s).

Grammar (whitespace around items is ignored)::

    spec  := item ("," item)*
    item  := ERROR | "retry_after=" SECONDS | "latency=" MS
           | "cut=" N | "stream_error=" N | "hold=" N | "linger=" MS | "pad=" MIB
           | "usage=" KIND
    ERROR := "rate_limit" | "insufficient_quota" | "server_error"
           | "overloaded" | "not_found"

A spec arrives in the ``x-sim-fault`` request header or is programmed for
the next ``count`` requests (optionally only those for one model or flavor)
with :meth:`FaultBook.program` / ``POST /_sim/faults``. A header spec is
layered over a programmed one (its items win).

>>> fault = parse_fault("rate_limit, retry_after=2.5")
>>> fault.error, fault.retry_after, fault.cut
('rate_limit', 2.5, None)

``hold=N`` sends N stream frames, then waits (up to a minute) for the client
to go away: a deterministic "client disconnected mid-stream".
``linger=MS`` keeps the connection open for MS after a stream's last frame before
ending it, as a provider whose end of stream lags its end marker: a client that
leaves at the marker (the openai SDK closes at ``[DONE]``) leaves before the end.
``pad=MIB`` makes a non-streamed answer's text MIB mebibytes longer (filler the bill
doesn't count), sent as it is made: a huge answer the simulator never holds whole.
``usage=KIND`` answers with hostile usage (``huge``, ``bignum``, ``negative``,
``string``, ``null``, ``junk``, ``cache_over``; see :mod:`.oddusage`), streamed or not;
the bill keeps the true usage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .oddusage import KINDS as USAGE_KINDS

ERRORS = frozenset({"rate_limit", "insufficient_quota", "server_error", "overloaded", "not_found"})


class FaultSpecError(ValueError):
    """A fault spec that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A parsed fault spec; the empty ``Fault()`` means 'behave normally'."""

    error: str | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    cut: int | None = None
    stream_error: int | None = None
    hold: int | None = None
    linger_ms: float = 0.0
    pad_mb: float = 0.0
    usage: str | None = None

    def over(self, base: Fault) -> Fault:
        """This fault's explicit items layered over ``base``."""
        changes = {k: v for k, v in _explicit(self).items() if v is not None}
        return replace(base, **changes)


def _explicit(fault: Fault) -> dict[str, Any]:
    return {
        "error": fault.error,
        "retry_after": fault.retry_after,
        "latency_ms": fault.latency_ms or None,
        "cut": fault.cut,
        "stream_error": fault.stream_error,
        "hold": fault.hold,
        "linger_ms": fault.linger_ms or None,
        "pad_mb": fault.pad_mb or None,
        "usage": fault.usage,
    }


def _number(kind: Callable[[str], Any], name: str, text: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise FaultSpecError(f"{name}= needs a number, got {text!r}") from None
    if value < 0:
        raise FaultSpecError(f"{name}= must not be negative")
    return value


_VALUED: dict[str, tuple[str, Callable[[str], Any]]] = {
    "retry_after": ("retry_after", float),
    "latency": ("latency_ms", float),
    "cut": ("cut", int),
    "stream_error": ("stream_error", int),
    "hold": ("hold", int),
    "linger": ("linger_ms", float),
    "pad": ("pad_mb", float),
}


def parse_fault(spec: str) -> Fault:
    """Parse a comma-separated fault spec; raises :class:`FaultSpecError`."""
    fields: dict[str, Any] = {}
    for raw in spec.split(","):
        item = raw.strip()
        name, has_value, value = item.partition("=")
        if not item:
            continue
        if name in ERRORS and not has_value:
            fields["error"] = name
        elif name == "usage" and has_value:
            if value.strip() not in USAGE_KINDS:
                kinds = ", ".join(sorted(USAGE_KINDS))
                raise FaultSpecError(f"usage= needs one of {kinds}, got {value.strip()!r}")
            fields["usage"] = value.strip()
        elif name in _VALUED and has_value:
            field, kind = _VALUED[name]
            fields[field] = _number(kind, name, value.strip())
        else:
            raise FaultSpecError(f"unknown fault item {item!r}")
    return Fault(**fields)


@dataclass(slots=True)
class _Programmed:
    fault: Fault
    remaining: int
    model: str | None
    flavor: str | None

    def matches(self, model: str, flavor: str) -> bool:
        return self.model in (None, model) and self.flavor in (None, flavor)


class FaultBook:
    """Faults programmed for upcoming requests, consumed first-come first-served.

    Lives on the server's event loop; program it from elsewhere through the
    loop (``Simulator.program`` does).
    """

    def __init__(self) -> None:
        self._queue: list[_Programmed] = []

    def program(
        self, spec: str, count: int = 1, model: str | None = None, flavor: str | None = None
    ) -> None:
        if count < 1:
            raise FaultSpecError("count must be at least 1")
        model = model.removeprefix("models/") if model else None
        self._queue.append(_Programmed(parse_fault(spec), count, model, flavor))

    def take(self, model: str, flavor: str) -> Fault:
        """The fault for one request to ``model`` (consumes one use of it)."""
        for entry in self._queue:
            if entry.matches(model, flavor):
                entry.remaining -= 1
                if entry.remaining == 0:
                    self._queue.remove(entry)
                return entry.fault
        return Fault()

    def clear(self) -> None:
        self._queue.clear()

    def pending(self) -> int:
        return sum(entry.remaining for entry in self._queue)
