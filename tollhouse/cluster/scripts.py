"""The Lua scripts behind the shared limits: each decision is one atomic script.

Time is the Redis server's ``TIME`` (microseconds), never an instance's, so
instances with skewed clocks agree. A TAT is an absolute microsecond count
(about 1.7e15, well below 2**53, so doubles keep it exact to a fraction of a
microsecond) stored with ``%.17g``; every key expires once it no longer
constrains anything, so idle upstreams leave nothing behind.

ADMIT keys, per quota (the upstream's, then the model's): request TAT, token
TAT, in-flight lease set; then cooldown (upstream, model), gone (model), the
provider's ejection and the deployment's (provider x model) open circuit; those
three refuse at once (the caller skips to its next candidate, never waits).
ARGV per quota: request interval and burst, token interval and burst, max in
flight (0: none of that limit); then the token
cost, the lease id and the lease TTL (µs). The result is ``{admitted, wait_us,
reason}`` (and, for a circuit or an ejection, why it opened); when admitted,
every bucket has been charged and the lease added.
"""

from __future__ import annotations

ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[11])
local wait, reason = 0, ''
local function later(w, why)
  if w > wait then wait, reason = w, why end
end
local gone = redis.call('PTTL', KEYS[9])
if gone > 0 then return {0, gone * 1000, 'gone'} end
local ejected = redis.call('PTTL', KEYS[10])
if ejected > 0 then return {0, ejected * 1000, 'ejected', redis.call('GET', KEYS[10])} end
local circuit = redis.call('PTTL', KEYS[11])
if circuit > 0 then return {0, circuit * 1000, 'circuit', redis.call('GET', KEYS[11])} end
for _, k in ipairs({KEYS[7], KEYS[8]}) do
  local p = redis.call('PTTL', k)
  if p > 0 then later(p * 1000, 'cooldown') end
end
local updates = {}
local function gcra(key, interval, burst, n)
  if interval <= 0 then return end
  local tat = tonumber(redis.call('GET', key) or '0')
  local new_tat = math.max(tat, now) + n * interval
  local allow_at = math.min(tat, new_tat - burst * interval)
  if now >= allow_at then
    updates[#updates + 1] = {key, new_tat}
  else
    later(allow_at - now, 'rate')
  end
end
local full = false
local function slots(key, max)
  if max <= 0 then return end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= max then full = true end
end
for q = 0, 1 do
  local k, a = q * 3, q * 5
  gcra(KEYS[k + 1], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), 1)
  gcra(KEYS[k + 2], tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), cost)
  slots(KEYS[k + 3], tonumber(ARGV[a + 5]))
end
if wait > 0 then return {0, math.ceil(wait), reason} end
if full then return {0, 0, 'slots'} end
for _, u in ipairs(updates) do
  local ms = math.ceil((u[2] - now) / 1000) + 1000
  redis.call('SET', u[1], string.format('%.17g', u[2]), 'PX', ms)
end
local ttl = tonumber(ARGV[13])
for q = 0, 1 do
  if tonumber(ARGV[q * 5 + 5]) > 0 then
    local key = KEYS[q * 3 + 3]
    redis.call('ZADD', key, now + ttl, ARGV[12])
    redis.call('PEXPIRE', key, math.ceil(ttl / 1000) + 1000)
  end
end
return {1, 0, ''}
"""

END = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local delta, n = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, n do
  local key, interval = KEYS[i], tonumber(ARGV[i + 2])
  local tat = tonumber(redis.call('GET', key) or '0')
  local new_tat
  if delta >= 0 then
    new_tat = math.max(tat, now) + delta * interval
  else
    new_tat = tat - math.max(0, math.min(-delta * interval, tat - now))
  end
  if new_tat > now and delta ~= 0 then
    local ms = math.ceil((new_tat - now) / 1000) + 1000
    redis.call('SET', key, string.format('%.17g', new_tat), 'PX', ms)
  end
end
for i = n + 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[n + 3])
end
return 1
"""
"""A lease's end in one call: correct its token reservation, give its slots back.

KEYS: the token TATs, then the lease sets; ARGV: the token delta, how many
token keys, each one's interval, the lease id. A refund only takes back
virtual time still ahead of now (none is handed out twice)."""

RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, math.ceil(ttl / 1000) + 1000)
end
return 1
"""
"""Push held leases' expiry: KEYS lease sets, ARGV the TTL (µs) then each key's lease id."""

UNTIL = """
local ms = math.ceil(tonumber(ARGV[1]) / 1000)
if ms <= 0 then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < ms then redis.call('SET', KEYS[1], ARGV[2] or '1', 'PX', ms) end
return 1
"""
"""A mark (cooldown, gone, open circuit) for ARGV[1] µs, its value ARGV[2] (why, if
given); a later mark never shortens one."""
