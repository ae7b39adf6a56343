"""Limits shared by several gateway instances: the small interface the Capacity gate consults.

One gateway alone needs nothing more than its own :class:`QuotaState`s, so
:class:`LocalLimiter` (the default) admits everything the local gate has
admitted. Several instances drawing on one provider key need one source of
truth: :class:`tollhouse.cluster.limits.RedisLimiter` implements the same
methods with one atomic Redis script per decision. The local gate still
orders its own waiters fairly (fair queueing is per instance); only the
request at the head of an instance's line asks the shared limiter.

>>> limiter = LocalLimiter()
>>> limiter.shared
False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from tollhouse.capacity.quota import Limits

GONE, CIRCUIT, COOLDOWN, RATE, SLOTS = "gone", "circuit", "cooldown", "rate", "slots"
EJECTED = "ejected"
"""Why a shared decision said "not now" (the longest wait wins; gone, ejected and
circuit are skipped at once). CIRCUIT is the deployment's (provider x model),
EJECTED the whole provider's."""


class SharedHold(Protocol):
    """What one admitted request holds in the shared limiter; returned with its lease."""

    def settle(self, reserved: int, actual: int) -> None: ...

    def release(self) -> None: ...


class Grant(NamedTuple):
    """A shared decision: admitted with ``hold``, or how long to wait and why."""

    hold: SharedHold | None
    wait: float = 0.0
    reason: str = ""
    why: str = ""
    """For a circuit or an ejection: the failure that opened it, on whichever instance."""

    @property
    def admitted(self) -> bool:
        return self.hold is not None


class SharedLimiter(Protocol):
    """Cross-instance admission, cooldowns, gone models and circuits.

    ``shared`` False means there is nothing beyond this process to consult:
    the gate skips the calls altogether (no await on the hot path).
    """

    shared: bool

    def configure(self, upstream: str, limits: Limits, per_model: Mapping[str, Limits]) -> None: ...

    async def admit(self, upstream: str, model: str, tokens: int) -> Grant: ...

    async def cool_down(self, upstream: str, model: str, seconds: float) -> None: ...

    async def mark_gone(self, upstream: str, model: str, seconds: float) -> None: ...

    async def open_circuit(
        self, upstream: str, seconds: float, *, model: str | None = None, reason: str = ""
    ) -> None:
        """A deployment's circuit (``model``), or the provider's ejection (None)."""

    async def reset(self, upstream: str, model: str | None) -> bool:
        """Clear health marks (circuit, gone, cooldown; never a block); True if any was set."""

    async def close(self) -> None: ...


class _NoHold:
    def settle(self, reserved: int, actual: int) -> None:
        pass

    def release(self) -> None:
        pass


class LocalLimiter:
    """In-process state only: the Capacity gate's own quotas are the whole truth."""

    shared = False

    def configure(self, upstream: str, limits: Limits, per_model: Mapping[str, Limits]) -> None:
        pass

    async def admit(self, upstream: str, model: str, tokens: int) -> Grant:
        return Grant(_NoHold())

    async def cool_down(self, upstream: str, model: str, seconds: float) -> None:
        pass

    async def mark_gone(self, upstream: str, model: str, seconds: float) -> None:
        pass

    async def open_circuit(
        self, upstream: str, seconds: float, *, model: str | None = None, reason: str = ""
    ) -> None:
        pass

    async def reset(self, upstream: str, model: str | None) -> bool:
        return False

    async def close(self) -> None:
        pass
