"""One Redis connection pool per gateway, and the one place that knows whether it is up.

Every feature that keeps state in Redis goes through :meth:`RedisState.run`:
while Redis answers it runs the command; when a command fails to connect or
times out, Redis is *down* for ``retry_s`` seconds, during which callers get
:class:`StateDown` at once (no request waits on a dead socket), then the next
call tries again: redis-py reconnects on its own. Going down and coming back
are logged once each and exported as metrics (:meth:`gauges`), never per
request.

>>> # state = RedisState.from_settings(settings.state)
>>> # value = await state.run("limits", lambda r: r.get(state.key("x")))
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from tollhouse.settings import StateSettings

log = logging.getLogger("tollhouse.cluster")

T = TypeVar("T")

DOWN_ERRORS = (RedisError, OSError)
"""What makes Redis count as down: unreachable, too slow, but also refusing (out of memory,
a read-only replica, still loading). Each feature then has its fallback, not a 500."""


class StateDown(Exception):
    """Redis is unreachable: the caller applies its feature's documented fallback."""


class RedisState:
    """The shared Redis, its key prefix, and its health.

    ``clock`` (monotonic seconds) only paces the retries while Redis is down;
    every decision that needs the time uses the Redis server's ``TIME``.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.retry_s = retry_s
        self.clock = clock
        self.up = True
        self._retry_at = 0.0
        self.fallbacks: Counter[str] = Counter()
        self.outages = 0

    @classmethod
    def from_settings(cls, s: StateSettings) -> RedisState:
        client = aioredis.Redis.from_url(
            s.url,
            socket_timeout=s.timeout_s,
            socket_connect_timeout=s.timeout_s,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        return cls(client, prefix=s.key_prefix, retry_s=s.retry_s)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def run(self, feature: str, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run ``command`` on the client; :class:`StateDown` when Redis is unreachable."""
        if not self.up and self.clock() < self._retry_at:
            self.fallbacks[feature] += 1
            raise StateDown(feature)
        try:
            result = await command(self.client)
        except DOWN_ERRORS as exc:
            self._went_down(exc)
            self.fallbacks[feature] += 1
            raise StateDown(feature) from exc
        if not self.up:
            self.up = True
            log.warning("shared state: Redis answers again; shared limits and state are back")
        return result

    async def attempt(
        self, feature: str, command: Callable[[aioredis.Redis], Awaitable[T]]
    ) -> T | None:
        """:meth:`run` for writes whose fallback is to do nothing (None: Redis is down)."""
        try:
            return await self.run(feature, command)
        except StateDown:
            return None

    def _went_down(self, exc: BaseException) -> None:
        self._retry_at = self.clock() + self.retry_s
        if self.up:
            self.up = False
            self.outages += 1
            log.error(
                "shared state: Redis is unreachable (%s: %.200s); limits fall back to "
                "per-instance shares, idempotency and the gate refuse with 503, the cache "
                "is bypassed, until it is back",
                type(exc).__name__,
                exc,
            )

    def gauges(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("tollhouse_state_up", "1 while the shared Redis answers.")
        up.add_metric([], 1.0 if self.up else 0.0)
        outages = CounterMetricFamily(
            "tollhouse_state_outages", "Times the shared Redis became unreachable."
        )
        outages.add_metric([], float(self.outages))
        fallbacks = CounterMetricFamily(
            "tollhouse_state_fallbacks",
            "Operations served by a feature's Redis-down fallback.",
            labels=["feature"],
        )
        for feature, count in sorted(self.fallbacks.items()):
            fallbacks.add_metric([feature], float(count))
        return [up, outages, fallbacks]

    async def close(self) -> None:
        await self.client.aclose()


def decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
