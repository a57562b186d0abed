-- Count a new connection of a user across instances. KEYS[1] relay:connections:<user>
-- (sorted set: connection id -> expiry in ms). ARGV: 1 connection id, 2 now ms,
-- 3 ttl ms, 4 max connections. Entries of crashed instances expire after ttl.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
