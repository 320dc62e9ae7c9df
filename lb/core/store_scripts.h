#pragma once
// The Lua scripts corral runs in the shared store (Redis >= 5, issue 15; plan-15 section 2).
// Each one does a read and a conditional write atomically in one round trip. They live here as
// plain text so that unit tests can read them and lb/net can SCRIPT LOAD them and compute
// their SHA1s. Keys are always passed in KEYS, except fleet_sync, which builds the other
// instances' `counts:` keys from ARGV[3] (the prefix): single-node Redis only (Cluster would
// need every key in one hash slot, e.g. a `{corral}` prefix).
//
// Replies are arrays; integers come back as Redis integers, values as bulk strings.
#include <string_view>

namespace lb::store_scripts {

// Read-through, first writer wins.
//   KEYS[1] = <p>pin:<32hex>;  ARGV = value, ttl_ms
//   -> {0, stored}  the key exists: the caller adopts `stored`
//   -> {1, value}   it did not: `value` is now stored with PX ttl_ms
// A stored value decode_pin() refuses (garbled, or another version) comes back as {0, v}
// too: the caller then keeps its own placement and writes it with pin_cas, which treats a
// value that is not a v1 pin as missing.
inline constexpr std::string_view pin_claim = R"lua(
local v = redis.call('GET', KEYS[1])
if v then return {0, v} end
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return {1, ARGV[1]}
)lua";

// Compare-and-set re-pin, on the backend field only (last_slot is raised by every
// instance). A missing key matches: after a Redis restart the move must land. So does a
// value that is not a v1 pin: nobody could use it.
//   KEYS[1] = <p>pin:<32hex>;  ARGV = expected_backend, value, ttl_ms, channel, msg
//   -> {1, value}   stored with PX ttl_ms, and msg published on channel
//   -> {0, stored}  another backend is stored: the caller adopts it
inline constexpr std::string_view pin_cas = R"lua(
local v = redis.call('GET', KEYS[1])
local b = v and string.match(v, '^v1|([^|]*)|')
if (not v) or (not b) or b == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return {1, ARGV[2]}
end
return {0, v}
)lua";

// Batched TTL refresh (pipelined, nobody waits on the reply).
//   KEYS[1] = <p>pin:<32hex>;  ARGV = backend, slot, ttl_ms, value_if_missing
//   -> {1}          same backend: last_slot raised to max(stored, slot), PX ttl_ms again
//   -> {0, stored}  another backend is stored: the caller adopts it (lost invalidation)
//   -> {2}          missing (Redis restarted empty) or not a v1 pin: value_if_missing
//                   stored with PX ttl_ms
// The slot is compared as a decimal string padded to 20 digits, because Lua numbers are
// doubles and lose precision past 2^53.
inline constexpr std::string_view pin_touch = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[4], 'NX', 'PX', ARGV[3])
  return {2}
end
local b, s, r = string.match(v, '^v1|([^|]*)|(%d+)|([^|]*)$')
if not b then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
  return {2}
end
if b ~= ARGV[1] then return {0, v} end
local function pad(x) return string.rep('0', 20 - #x) .. x end
if #ARGV[2] <= 20 and #s <= 20 and pad(ARGV[2]) > pad(s) then
  redis.call('SET', KEYS[1], 'v1|' .. b .. '|' .. ARGV[2] .. '|' .. r, 'PX', ARGV[3])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1}
)lua";

// Fleet pin counts, every sync_interval on the control link.
//   KEYS[1] = <p>counts:<self>, KEYS[2] = <p>instances
//   ARGV = self, ttl_ms, prefix, name1, n1, name2, n2, ...   (name = "pool/backend")
// Replaces our own counts hash (PX ttl_ms), registers self in the instances zset with
// score now+ttl (Redis TIME, so instance clocks do not matter), drops expired members,
// and returns {live_instances, name, n, name, n, ...} summed over every OTHER live instance
// (a name may repeat: one pair per instance; the caller sums).
inline constexpr std::string_view fleet_sync = R"lua(
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('DEL', KEYS[1])
if #ARGV > 3 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
  redis.call('PEXPIRE', KEYS[1], ttl)
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], ttl * 10)
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {#members}
for _, m in ipairs(members) do
  if m ~= ARGV[1] then
    local h = redis.call('HGETALL', ARGV[3] .. 'counts:' .. m)
    for i = 1, #h do out[#out + 1] = h[i] end
  end
end
return out
)lua";

// Shared Blockfrost quota: takes a lease of up to `want` requests from the pool's bucket.
//   KEYS[1] = <p>quota:<pool> (hash tokens, ts_ms, day, used), KEYS[2] = <p>quota:<pool>:cool
//   ARGV = want, rps, burst, daily   (rps 0 = no bucket, daily 0 = no daily quota)
//   -> {0, 'cool', status, pttl}          an upstream cool-down (402/429/418) runs
//   -> {granted, refusal, retry_ms, used} refusal is 'rate', 'daily' or '' (granted > 0)
// The grant counts as spent at once (conservative: an unused lease is not given back).
// Scripts that read TIME and then write call redis.replicate_commands() first: Redis 5-6
// refuse such writes otherwise; in Redis 7 the call is a no-op (effects are always replicated).
inline constexpr std::string_view quota_take = R"lua(
redis.replicate_commands()
local cool = redis.call('GET', KEYS[2])
if cool then return {0, 'cool', cool, redis.call('PTTL', KEYS[2])} end
local want = tonumber(ARGV[1])
local rps = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local daily = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day = math.floor(now / 86400000)
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts_ms', 'day', 'used')
local tokens = tonumber(h[1]) or burst
local ts = tonumber(h[2]) or now
local used = tonumber(h[4]) or 0
if tonumber(h[3]) ~= day then used = 0 end
if rps > 0 then
  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rps / 1000) end
else
  tokens = want
end
local g = math.min(want, math.floor(tokens))
if daily > 0 then g = math.min(g, math.max(daily - used, 0)) end
local refusal, retry = '', 0
if g <= 0 then
  g = 0
  if daily > 0 and used >= daily then
    refusal = 'daily'
    retry = (day + 1) * 86400000 - now
  else
    refusal = 'rate'
    retry = 1000
    if rps > 0 then retry = math.max(1, math.ceil((1 - tokens) * 1000 / rps)) end
  end
end
if rps > 0 then tokens = tokens - g end
used = used + g
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts_ms', now, 'day', day, 'used', used)
redis.call('PEXPIRE', KEYS[1], 172800000)
return {g, refusal, retry, used}
)lua";

// An upstream cool-down seen by one instance, shared with the others.
//   KEYS[1] = <p>quota:<pool>:cool;  ARGV = status, ttl_ms, channel, msg
//   -> 1
inline constexpr std::string_view quota_cool = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
)lua";

}  // namespace lb::store_scripts
