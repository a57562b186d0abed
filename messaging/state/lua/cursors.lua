-- Move cursors forward only, and only of subscriptions that still exist.
-- KEYS[1] relay:subscriptions:<user>; ARGV: channel1, ts1, channel2, ts2, ...
-- ts are decimal Unix ns; compared as strings of digits (longer is larger), since
-- they exceed the integers Lua's doubles hold exactly.
local moved = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local ts = ARGV[i + 1]
  if cur and (cur == '' or #ts > #cur or (#ts == #cur and ts > cur)) then
    redis.call('HSET', KEYS[1], ARGV[i], ts)
    moved = moved + 1
  end
end
return moved
