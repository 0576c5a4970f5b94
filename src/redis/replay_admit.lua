-- SPDX-License-Identifier: Apache-2.0
-- securemqtt: the replay check-and-update of docs/envelope-v1.md section 4, done atomically in
-- Redis so that every verifier sharing the server (a consumer group) admits a message at most
-- once. Run with EVAL/EVALSHA on a message whose MAC and freshness the caller has checked.
--
-- Every key of one key id carries the hash tag {K} (K = the key id, hex-encoded), so in a Redis
-- Cluster they live on one node and the script stays atomic:
--   KEYS[1]  P..'m:'..S   hash: h = highest counter (16 hex digits), t = highest timestamp (ms)
--   KEYS[2]  P..'b:'..S   string: the window bitmap, bit (counter mod window)
--   KEYS[3]  P..'lru'     sorted set: stream ids (16 hex digits) by last admission
--   KEYS[4]  P..'wm'      string: the key id's watermark (ms), absent until an eviction
--   KEYS[5]  P..'seq'     string: the key id's admission sequence, the LRU's score
--   KEYS[6]  P..'r:'..S..':'..C  (optional) the message's reservation (replay_reserve.lua),
--            ended here: this script is the commit of a reserved message
--   KEYS[7]  P..'rt:'..TOPIC     (optional, for a message signed with the retain flag) the
--            newest such timestamp admitted on its topic under this key id
-- with P = 'securemqtt:{K}:', S the stream id and C the counter (16 hex digits each).
--   ARGV[1] S, 16 hex digits      ARGV[2] the counter, 16 hex digits
--   ARGV[3] the timestamp (ms)    ARGV[4] the window (a multiple of 64, at most 65536)
--   ARGV[5] streams kept per key id (at least 1)
--   ARGV[6] the expiry (ms): the longest age any message may be accepted at, plus the future
--           skew and a margin for clocks, so that state expires only when every message it
--           could protect is too_old anyway (expiry never reopens a replay)
--   ARGV[7] P
-- Returns 0 when admitted (and recorded); otherwise not admitted: 1 when this counter is recorded
-- already, 2 when it is behind the window or the watermark (so a commit that finds 1 learns that
-- another verifier recorded the message, one that finds 2 only that the stream moved on). Expiry times only ever grow, so a
-- message with a shorter expiry (no age allowance) never shortens state a longer one needs.
--
-- Counters are 64-bit; Lua numbers are doubles, exact only below 2^53. So counters travel as
-- fixed-width hex (string order = numeric order) and arithmetic uses 32-bit halves.

local meta, bits, lru, wm_key, seq_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local stream, counter = ARGV[1], ARGV[2]
local ts = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local quota = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local prefix = ARGV[7]

local function halves(hex)
  return tonumber(string.sub(hex, 1, 8), 16), tonumber(string.sub(hex, 9, 16), 16)
end

-- The bit of a counter: (hi * 2^32 + lo) mod window, exact in doubles for window <= 65536.
local function bit_of(hex)
  local hi, lo = halves(hex)
  return ((hi % window) * (4294967296 % window) + lo) % window
end

-- a - b for hex counters a > b, or nil when it is 2^32 or more (always beyond any window).
local function distance(a, b)
  local ahi, alo = halves(a)
  local bhi, blo = halves(b)
  if ahi == bhi then return alo - blo end
  if ahi == bhi + 1 then
    local d = 4294967296 + alo - blo
    if d < 4294967296 then return d end
  end
  return nil
end

-- The counter after `hex` (for clearing bits between the old and the new highest).
local function next_counter(hex)
  local hi, lo = halves(hex)
  if lo == 4294967295 then return string.format('%08x%08x', hi + 1, 0) end
  return string.format('%08x%08x', hi, lo + 1)
end

if KEYS[6] then redis.call('DEL', KEYS[6]) end

-- Sets the expiry of `key` to `ms` (default ttl) unless it is later already.
local function extend(key, ms)
  ms = ms or ttl
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

local highest = redis.call('HGET', meta, 'h')
if not highest then
  -- A stream not tracked: admitted only above the key id's watermark.
  local wm = redis.call('GET', wm_key)
  if wm and ts <= tonumber(wm) then return 2 end
  -- Make room within the key id's quota: forget its least recently admitted streams, raising
  -- its watermark to their newest timestamps so their replays stay closed.
  local tracked = redis.call('ZCARD', lru)
  while tracked >= quota do
    local victim = redis.call('ZRANGE', lru, 0, 0)[1]
    local victim_ts = redis.call('HGET', prefix .. 'm:' .. victim, 't')
    if victim_ts then
      local current = redis.call('GET', wm_key)
      if not current or tonumber(victim_ts) > tonumber(current) then
        redis.call('SET', wm_key, victim_ts, 'KEEPTTL')
      end
      -- The watermark now protects the victim's messages: it lives at least as long as the
      -- victim's state would have (a stream with a longer age allowance than this message's).
      extend(wm_key, math.max(ttl, redis.call('PTTL', prefix .. 'm:' .. victim)))
    end
    redis.call('DEL', prefix .. 'm:' .. victim, prefix .. 'b:' .. victim)
    redis.call('ZREM', lru, victim)
    tracked = tracked - 1
  end
  redis.call('DEL', bits)
  redis.call('HSET', meta, 'h', counter, 't', ARGV[3])
else
  if counter > highest then
    local d = distance(counter, highest)
    if d == nil or d >= window then
      redis.call('DEL', bits)
    else
      local c = highest
      for _ = 1, d do
        c = next_counter(c)
        redis.call('SETBIT', bits, bit_of(c), 0)
      end
    end
    redis.call('HSET', meta, 'h', counter)
  else
    local d = distance(highest, counter)
    if counter == highest then d = 0 end
    if d == nil or d >= window then return 2 end  -- behind the window
    if redis.call('GETBIT', bits, bit_of(counter)) == 1 then return 1 end
  end
  local old_ts = tonumber(redis.call('HGET', meta, 't') or ARGV[3])
  if ts > old_ts then redis.call('HSET', meta, 't', ARGV[3]) end
end
redis.call('SETBIT', bits, bit_of(counter), 1)
redis.call('ZADD', lru, redis.call('INCR', seq_key), stream)
for _, key in ipairs({meta, bits, lru, seq_key}) do extend(key) end
if KEYS[7] then
  local newest = redis.call('GET', KEYS[7])
  if not newest or ts > tonumber(newest) then redis.call('SET', KEYS[7], ARGV[3], 'KEEPTTL') end
  extend(KEYS[7])
end
return 0
