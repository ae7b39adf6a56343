"""What several gateway instances share, kept in Redis: limits, trust state, sight of each other.

Configured with ``[state] url = "redis://127.0.0.1:6379/0"``; without it
everything stays in the process, as before. What is shared, and what each
feature does while Redis is down, is in the README ("Run several instances"):

- :mod:`.limits`: request/token limits, in-flight leases, cooldowns, gone
  models, open circuits (the Capacity gate's :class:`SharedLimiter`);
- :mod:`.trust`: idempotency claims, trajectories, the answer cache (a
  :class:`~tollhouse.trust.store.TrustStore`);
- :mod:`.blocks`: the kill switch's blocks (``tollhouse models block``);
- :mod:`.client`: the connection, the key prefix, health, its log lines and metrics.
"""

from __future__ import annotations

from tollhouse.cluster.blocks import RedisBlocks
from tollhouse.cluster.client import RedisState, StateDown
from tollhouse.cluster.durability import check_persistence
from tollhouse.cluster.limits import RedisLimiter
from tollhouse.cluster.trust import RedisTrustStore, StateUnavailable
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.settings import StateSettings


class SharedState:
    """The Redis connection and what is built on it, for one gateway.

    >>> # shared = SharedState(settings.state)
    >>> # Capacity(shared=shared.limiter); build_trust(..., store=shared.trust_store(...))
    """

    def __init__(self, settings: StateSettings) -> None:
        self.settings = settings
        self.redis = RedisState.from_settings(settings)
        self.limiter = RedisLimiter(
            self.redis,
            lease_ttl_s=settings.lease_ttl_s,
            expected_instances=settings.expected_instances,
        )
        self.trust: RedisTrustStore | None = None
        self.blocks = RedisBlocks(self.redis)

    def trust_store(
        self, writer: LedgerWriter, *, retention_s: float, key_retention_s: float
    ) -> RedisTrustStore:
        self.trust = RedisTrustStore(
            self.redis,
            writer,
            retention_s=retention_s,
            key_retention_s=key_retention_s,
            forget_s=self.settings.lease_ttl_s,  # a crashed instance is forgotten as its slots
        )
        return self.trust

    async def check(self) -> list[str]:
        """At start: what Redis lacks to keep the trust state across its restart (logged)."""
        return await check_persistence(self.redis)

    async def close(self) -> None:
        if self.trust is not None:
            await self.trust.close()
        await self.redis.close()


__all__ = [
    "RedisBlocks",
    "RedisLimiter",
    "RedisState",
    "RedisTrustStore",
    "SharedState",
    "StateDown",
    "StateUnavailable",
]
