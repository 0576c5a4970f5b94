-- SPDX-License-Identifier: Apache-2.0
-- securemqtt: the first half of a shared store's admission (docs/envelope-v1.md section 4,
-- "Stores"). Reserves a message whose MAC and freshness the caller has checked, so that no other
-- verifier sharing the store admits it while this one hands it to the application; the commit
-- (replay_admit.lua with KEYS[6]) records it and ends the reservation. Changes no window: a
-- verifier that dies before committing leaves only a reservation, which ends with its lease, so
-- the broker's redelivery of the message is admitted then (at least once).
--
-- Keys, all hash-tagged {K} as in replay_admit.lua (P = 'securemqtt:{K}:'):
--   KEYS[1]  P..'m:'..S           the stream's highest counter (h) and timestamp (t)
--   KEYS[2]  P..'b:'..S           the stream's window bitmap
--   KEYS[3]  P..'wm'              the key id's watermark
--   KEYS[4]  P..'r:'..S..':'..C   this message's reservation: the holder, expiring with the lease
--   KEYS[5]  P..'rt:'..TOPIC      (optional, for a message signed with the retain flag) the
--                                 newest such timestamp recorded on its topic under this key id
--   ARGV[1] the counter, 16 hex digits   ARGV[2] the timestamp (ms)
--   ARGV[3] the window (a multiple of 64, at most 65536)
--   ARGV[4] the holder (unique per verifier)   ARGV[5] the lease (ms)
-- Returns 0 when reserved for the holder (or already held by it), 1 when replayed (recorded
-- before, behind the window or the watermark, or an older retained state), and -N when another
-- holder's lease runs for N more ms.

local meta, bits, wm_key, res = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local counter = ARGV[1]
local ts = tonumber(ARGV[2])
local window = tonumber(ARGV[3])

local function halves(hex)
  return tonumber(string.sub(hex, 1, 8), 16), tonumber(string.sub(hex, 9, 16), 16)
end

local function bit_of(hex)
  local hi, lo = halves(hex)
  return ((hi % window) * (4294967296 % window) + lo) % window
end

-- a - b for hex counters a >= b, or nil when it is 2^32 or more.
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

if KEYS[5] then
  local newest = redis.call('GET', KEYS[5])
  if newest and ts < tonumber(newest) then return 1 end
end

local highest = redis.call('HGET', meta, 'h')
if not highest then
  local wm = redis.call('GET', wm_key)
  if wm and ts <= tonumber(wm) then return 1 end
elseif counter <= highest then
  local d = distance(highest, counter)
  if d == nil or d >= window then return 1 end
  if redis.call('GETBIT', bits, bit_of(counter)) == 1 then return 1 end
end

local holder = redis.call('GET', res)
if holder and holder ~= ARGV[4] then
  local left = redis.call('PTTL', res)
  if left < 1 then left = 1 end
  return -left
end
redis.call('SET', res, ARGV[4], 'PX', ARGV[5])
return 0
