-- KEYS[1] = users. ARGV = expiry, key prefix of conns hashes, then user, conn pairs.
-- Extends every listed connection (re-adding one a sweep removed while its node was slow).
for i = 3, #ARGV, 2 do
  redis.call('HSET', ARGV[2] .. ARGV[i], ARGV[i + 1], ARGV[1])
  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[i])
end
return 0
