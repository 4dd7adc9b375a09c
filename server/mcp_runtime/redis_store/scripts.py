"""The redis backend's Lua scripts: each is atomic across replicas, and times are Redis's own clock."""

from __future__ import annotations

# Scripts declare whether they may grow memory: one that does is refused while Redis is full (OOM, a 503 before
# it runs); one that only refreshes or frees (touch, delete, sweep, reads) runs even then, so open sessions go on.
GROWS = "#!lua\n"
KEEPS = "#!lua flags=allow-oom\n"

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

ADMIT = (
    _NOW
    + """
-- KEYS: sessions, client set, record
-- ARGV: ttl_ms, max, max_per_client, id, client_key, owner, protocol version, client params
if redis.call('ZCOUNT', KEYS[1], now, '+inf') >= tonumber(ARGV[2]) then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 2 end
local expires = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], expires, ARGV[4])
redis.call('ZADD', KEYS[2], expires, ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'ck', ARGV[5], 'o', ARGV[6], 'c', now, 'pv', ARGV[7], 'cp', ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 0
"""
)

TOUCH = (
    _NOW
    + """
-- KEYS: record, state, sessions; ARGV: ttl_ms, id, client-set prefix
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
local expires = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[3], 'XX', expires, ARGV[2])
local ck = redis.call('HGET', KEYS[1], 'ck')
if ck then
  redis.call('ZADD', ARGV[3] .. ck, 'XX', expires, ARGV[2])
  redis.call('PEXPIRE', ARGV[3] .. ck, ARGV[1])
end
return 1
"""
)

DELETE = """
-- KEYS: sessions, then every key of the session (the record first); ARGV: id, client-set prefix
local ck = redis.call('HGET', KEYS[2], 'ck')
redis.call('DEL', unpack(KEYS, 2))
redis.call('ZREM', KEYS[1], ARGV[1])
if ck then redis.call('ZREM', ARGV[2] .. ck, ARGV[1]) return 1 end
return 0
"""

SWEEP = (
    _NOW
    + """
-- KEYS: sessions. Removes (and so counts once, whichever replica sweeps) the sessions past their expiry.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 5000)
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""
)

COUNT = _NOW + "return redis.call('ZCOUNT', KEYS[1], now, '+inf')\n"

STATE_SET = """
-- KEYS: record, state; ARGV: field, value
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""

STATE_INCREMENT = """
-- KEYS: record, state; ARGV: field, by
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return {0, 0} end
local value = redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return {1, value}
"""

_OWNED = """
local owner = redis.call('HGET', KEYS[1], 'o')
if not owner or owner ~= ARGV[1] then return false end
redis.call('PEXPIRE', KEYS[1], redis.call('HGET', KEYS[1], 't'))
"""

HANDLE_GET = _OWNED + "return redis.call('HGETALL', KEYS[1])\n"

HANDLE_INCREMENT = _OWNED + "return {redis.call('HINCRBY', KEYS[1], 'd:' .. ARGV[2], ARGV[3])}\n"

HANDLE_SET = (
    _OWNED
    + """
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'd:' then redis.call('HDEL', KEYS[1], field) end
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], 'd:' .. ARGV[i], ARGV[i + 1]) end
return {1}
"""
)

HANDLE_DELETE = _OWNED + "redis.call('DEL', KEYS[1]) return {1}\n"

HANDLE_CREATE = """
-- KEYS: handle; ARGV: ttl_ms, then field, value pairs
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

STATE_DELETE = """
-- KEYS: record, state; ARGV: field
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

RECORD = (
    _NOW
    + """
-- KEYS: the session's event log, its SSE messages channel
-- ARGV: stream token, message, final (1/0), max length, ttl_ms, retention_ms
-- Keeps a message of one of the session's SSE streams and publishes it to the replicas holding its streams,
-- in one round trip: the log is bounded in length and in age, and goes with the session.
local fields = {'s', ARGV[1], 'm', ARGV[2]}
if ARGV[3] == '1' then fields[5] = 'f' fields[6] = '1' end
local entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
redis.call('XTRIM', KEYS[1], 'MINID', '~', now - tonumber(ARGV[6]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local event = {t = 'message', s = ARGV[1], e = entry, m = ARGV[2], f = tonumber(ARGV[3])}
redis.call('PUBLISH', KEYS[2], cjson.encode(event))
return entry
"""
)
