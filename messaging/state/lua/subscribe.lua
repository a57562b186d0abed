-- Record a subscription. KEYS[1] relay:subscriptions:<user> (hash channel -> cursor ts,
-- '' before any), KEYS[2] relay:subscribers:<channel> (set), KEYS[3] relay:subgen:<user>.
-- ARGV: 1 channel, 2 userid, 3 max subscriptions per user.
-- Returns {'limit'} | {'ok', cursor, generation}
local cursor = redis.call('HGET', KEYS[1], ARGV[1])
if not cursor then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
    return {'limit'}
  end
  cursor = ''
  redis.call('HSET', KEYS[1], ARGV[1], cursor)
end
redis.call('SADD', KEYS[2], ARGV[2])
return {'ok', cursor, redis.call('INCR', KEYS[3])}
