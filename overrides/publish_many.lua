-- PUBLISH each (Redis channel, message) pair of ARGV, in order, in one command: a
-- relay_worker's batch of channel-layer group sends (layers.py group_send_many).
-- ARGV: channel 1, message 1, channel 2, message 2, ...
-- Returns how many messages were published.
for i = 1, #ARGV, 2 do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
