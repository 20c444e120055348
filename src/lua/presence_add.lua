-- KEYS[1] = conns:<user> (hash conn -> expiry ms), KEYS[2] = users (zset user -> latest expiry)
-- ARGV = conn, expiry, now, user. Returns 1 when this is the user's only live connection.
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[4])
if redis.call('HLEN', KEYS[1]) == 1 then return 1 end
return 0
