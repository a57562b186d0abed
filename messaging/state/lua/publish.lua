-- Store one message atomically: idempotency, rate limit, ts, history, fan-out list.
-- KEYS[1] relay:history:<channel>   KEYS[2] relay:subscribers:<channel>
-- KEYS[3] relay:idempotency:<user>:<channel>:<client_id> (unused without client_id)
-- KEYS[4] relay:rate:<user>
-- ARGV: 1 now_ms, 2 now_rem_ns (0..999999), 3 userid, 4 text, 5 name,
--       6 maxlen, 7 min id ms (age trim), 8 rate (tokens/s, 0 = off), 9 burst,
--       10 '1' when a client_id is given, 11 idempotency ttl (s)
-- Returns {'dup', id, text, name, prev_id, subscribers} | {'rate', retry_after_ms}
--       | {'ok', id, prev_id, subscribers}
-- A repeat returns the first message with its own prev_id: its events must sequence
-- exactly like the first ones (delivery.py), or a connection could skip a message.
if ARGV[10] == '1' then
  local seen = redis.call('HMGET', KEYS[3], 'id', 't', 'n', 'p')
  if seen[1] then
    return {'dup', seen[1], seen[2], seen[3], seen[4], redis.call('SMEMBERS', KEYS[2])}
  end
end

local now_ms = tonumber(ARGV[1])
local rate = tonumber(ARGV[8])
if rate > 0 then
  -- Token bucket in microseconds: integers below 2^53 stay exact in Lua's doubles.
  local burst = tonumber(ARGV[9])
  local now_us = now_ms * 1000 + math.floor(tonumber(ARGV[2]) / 1000)
  local bucket = redis.call('HMGET', KEYS[4], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now_us
  if now_us > at then
    tokens = math.min(burst, tokens + (now_us - at) * rate / 1000000)
    at = now_us
  end
  if tokens < 1 then
    return {'rate', string.format('%.0f', math.ceil((1 - tokens) * 1000 / rate))}
  end
  redis.call('HSET', KEYS[4], 'tokens', string.format('%.6f', tokens - 1), 'at', string.format('%.0f', at))
  redis.call('PEXPIRE', KEYS[4], math.ceil(burst * 1000 / rate) + 1000)
end

local ms, rem = now_ms, tonumber(ARGV[2])
local prev = '0-0'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  prev = last[1][1]
  local dash = string.find(prev, '-', 1, true)
  local last_ms = tonumber(string.sub(prev, 1, dash - 1))
  local last_rem = tonumber(string.sub(prev, dash + 1))
  if ms < last_ms or (ms == last_ms and rem <= last_rem) then
    ms, rem = last_ms, last_rem + 1
    if rem > 999999 then ms, rem = ms + 1, 0 end
  end
end
local id = string.format('%.0f-%.0f', ms, rem)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], id, 'u', ARGV[3], 't', ARGV[4], 'n', ARGV[5], 'p', prev)
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[7])

if ARGV[10] == '1' then
  redis.call('HSET', KEYS[3], 'id', id, 't', ARGV[4], 'n', ARGV[5], 'p', prev)
  redis.call('EXPIRE', KEYS[3], ARGV[11])
end
return {'ok', id, prev, redis.call('SMEMBERS', KEYS[2])}
