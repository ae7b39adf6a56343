"""Which instances may know of steps the others can't see: :class:`Sight`.

An instance that can't reach Redis still answers model calls, and keeps their
steps to push once Redis answers (:class:`~tollhouse.cluster.trust.RedisTrustStore`'s
backlog). Until it has, no other instance can see those steps, so none may
allow an irreversible action on their word. An instance can't say so while
it is cut off; the others can notice its silence instead:

- every instance that records steps *beats*: a registry in Redis (a sorted
  set) holds, per instance, the Redis time of its last beat. It beats only
  after pushing its backlog, so a beat says "Redis has every step I answered";
- an instance is *blind spot* while its last beat is older than ``stale_s``,
  or was made before Redis last started (its ``run_id`` differs: a restarted
  Redis, and every instance must beat again, having pushed what it answered
  meanwhile);
- one silent for ``forget_s`` (a crashed instance; a clean stop leaves the
  registry at once) is forgotten: from then on its steps, if it ever comes
  back with some, are seen only once it pushes them.

The gate asks :meth:`Sight.blind` before it allows an irreversible action,
and refuses with 503 while any other instance is a blind spot.

>>> # sight = Sight(state, stale_s=4.0, forget_s=30.0)
>>> # await state.run("trust", sight.beat); await state.run("trust", sight.blind)
"""

from __future__ import annotations

import secrets
from typing import Any

from tollhouse.cluster.client import RedisState, decode

BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], run)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return now
"""
"""KEYS: the registry, the Redis run each beat was made in; ARGV: this instance, the
registry's lifetime (ms)."""

BLIND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local info = redis.call('INFO', 'server')
local up = string.match(info, 'uptime_in_seconds:(%d+)')
local run = string.match(info, 'run_id:(%w+)')
local boot = now - tonumber(up) * 1000
local found = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local blind = {}
for i = 1, #found, 2 do
  local who, seen = found[i], tonumber(found[i + 1])
  if who ~= ARGV[1] then
    if now - math.max(seen, boot) > tonumber(ARGV[3]) then
      redis.call('ZREM', KEYS[1], who)
      redis.call('HDEL', KEYS[2], who)
    elseif redis.call('HGET', KEYS[2], who) ~= run or now - seen > tonumber(ARGV[2]) then
      table.insert(blind, who)
      table.insert(blind, tostring(now - seen))
    end
  end
end
return blind
"""
"""KEYS: the registry, the runs; ARGV: this instance, stale ms, forget ms. Returns
(instance, ms silent) pairs. A beat made in another Redis run (Redis restarted since: its
``run_id`` changes at every start, exactly, where uptime counts whole seconds) is blind."""


class Sight:
    """This instance's beat, and the other instances that may hold unshared steps."""

    def __init__(self, state: RedisState, *, stale_s: float, forget_s: float) -> None:
        self.instance = secrets.token_hex(6)
        self.registry = state.key("instances")
        self.runs = state.key("instances:run")
        self.stale_ms = max(1, round(stale_s * 1000))
        self.forget_ms = max(self.stale_ms, round(forget_s * 1000))
        self._beat = state.client.register_script(BEAT)
        self._blind = state.client.register_script(BLIND)

    async def beat(self, r: Any) -> None:
        """Say "Redis has every step I answered" (call only with an empty backlog)."""
        args: list[Any] = [self.instance, self.forget_ms * 10]
        await self._beat(keys=[self.registry, self.runs], args=args, client=r)

    async def blind(self, r: Any) -> list[tuple[str, float]]:
        """The other instances not heard from lately: ``(instance, seconds silent)``."""
        args: list[Any] = [self.instance, self.stale_ms, self.forget_ms]
        found = await self._blind(keys=[self.registry, self.runs], args=args, client=r)
        return [(decode(found[i]), int(found[i + 1]) / 1000) for i in range(0, len(found), 2)]

    async def leave(self, r: Any) -> None:
        """A clean stop: nothing left unshared, so no one need wait for this instance."""
        await r.zrem(self.registry, self.instance)
        await r.hdel(self.runs, self.instance)
