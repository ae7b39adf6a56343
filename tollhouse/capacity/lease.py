"""A lease: one admitted upstream call's hold on its quotas, returned exactly once.

>>> # lease = await capacity.acquire("openai", "gpt-4o", "acme", tokens=1200, deadline=t)
>>> # try: response = await send()
>>> # finally: lease.release(classify(response.status, body))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tollhouse.capacity.breaker import CircuitBreaker
from tollhouse.capacity.classify import BREAKER_FAILURES, ErrorClass
from tollhouse.capacity.quota import QuotaState

if TYPE_CHECKING:
    from tollhouse.capacity.shared import SharedHold


class Lease:
    """The right to make one upstream call, holding a slot and a token reservation.

    :meth:`settle` corrects the tokens once the usage is known (any time, even
    after release); :meth:`release` returns the slot and tells the breaker how
    the call went; :meth:`abandon` returns everything for a call never made.
    """

    def __init__(
        self,
        *,
        upstream: str,
        model: str,
        tokens: int,
        waited: float,
        quotas: Sequence[QuotaState],
        breaker: CircuitBreaker,
        probe: bool,
        provider: CircuitBreaker | None = None,
        provider_probe: bool = False,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.upstream = upstream
        self.model = model
        self.tokens = tokens
        self.waited = waited
        """Seconds spent queued for capacity."""
        self.released = False
        self.probe = probe
        """This call is the deployment's half-open circuit's one probe."""
        self.provider_probe = provider_probe
        """This call is the ejected provider's one probe."""
        self._quotas = [(q, q.reserved_until) for q in quotas]
        self._breaker = breaker
        self._provider = provider
        self._clock = clock
        self._wake = wake
        self._charged = tokens
        self._shared: SharedHold | None = None

    def share(self, hold: SharedHold) -> None:
        """Also hold a reservation in the shared limiter, settled and returned with this lease."""
        self._shared = hold

    def settle(self, actual_tokens: int) -> None:
        """Replace the token reservation with the real usage (refund or charge)."""
        now = self._clock()
        for quota, until in self._quotas:
            quota.settle(self._charged, actual_tokens, now, reserved_until=until)
        if self._shared is not None:
            self._shared.settle(self._charged, actual_tokens)
        refunded = actual_tokens < self._charged
        self._charged = actual_tokens
        if refunded:
            self._wake()

    def release(self, outcome: ErrorClass | None, *, provider_down: str | None = None) -> None:
        """The call is over: its slot back; its outcome to the breakers. Idempotent.

        Success, RATE_LIMIT, CLIENT and MODEL_GONE show the deployment answering;
        SERVER, OVERLOADED, TIMEOUT and CONNECTION count as its failures.
        ``provider_down`` (why) is provider-wide evidence: it ejects the whole
        provider and says nothing about this model (see :mod:`tollhouse.capacity`).
        """
        if not self._give_back():
            return
        now = self._clock()
        if provider_down is not None:
            if self._provider is not None:
                self._provider.trip(now, provider_down)
            if self.probe:
                self._breaker.abandon()
        else:
            ok = outcome not in BREAKER_FAILURES
            self._breaker.record(ok, now, outcome.value if outcome else "")
            if self._provider is not None:
                self._provider.record(True, now)  # it answered: the provider is reachable
        self._wake()

    def abandon(self) -> None:
        """The call was never made (cancelled before sending): slot and tokens back,
        no verdict for the breaker. Idempotent, and a no-op after :meth:`release`."""
        if self._give_back():
            self.settle(0)
            if self.probe:
                self._breaker.abandon()
            if self.provider_probe and self._provider is not None:
                self._provider.abandon()
            self._wake()

    def _give_back(self) -> bool:
        if self.released:
            return False
        self.released = True
        for quota, _ in self._quotas:
            quota.release()
        if self._shared is not None:
            self._shared.release()
        return True

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"<Lease {self.upstream}/{self.model} {self.tokens} tokens, {state}>"
