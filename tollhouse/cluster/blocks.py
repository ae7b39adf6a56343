"""The kill switch's blocks in Redis: one hash every instance reads twice a second.

Redis down: :meth:`RedisBlocks.load` says so (None) and each instance keeps
the blocks it last saw; a block set meanwhile holds on the instance that was
asked, and the command says the others may not know.
"""

from __future__ import annotations

import json
from typing import Any

from tollhouse.capacity.policy import Block, BlocksNotShared, BlockStore, decode_blocks
from tollhouse.cluster.client import RedisState, StateDown, decode

FEATURE = "blocks"


class RedisBlocks(BlockStore):
    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.key = state.key("blocks")

    async def load(self) -> dict[str, Block] | None:
        try:
            raw = await self.state.run(FEATURE, lambda r: r.hgetall(self.key))
        except StateDown:
            return None
        parsed: dict[str, Any] = {}
        for field, value in raw.items():
            try:
                parsed[decode(field)] = json.loads(decode(value))
            except ValueError:
                continue
        return decode_blocks(parsed)

    async def put(self, block: Block) -> None:
        value = json.dumps(
            {
                "provider": block.provider,
                "model": block.model,
                "reason": block.reason,
                "by": block.by,
                "since": block.since,
            }
        )
        try:
            await self.state.run(FEATURE, lambda r: r.hset(self.key, block.target, value))
        except StateDown:
            raise BlocksNotShared(block.target) from None

    async def delete(self, target: str) -> bool:
        try:
            found = await self.state.run(FEATURE, lambda r: r.hdel(self.key, target))
        except StateDown:
            raise BlocksNotShared(target) from None
        return bool(found)
