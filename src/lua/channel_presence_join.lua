-- KEYS[1] = conns of the channel (hash conn -> user), KEYS[2] = counts (hash user -> conns),
-- KEYS[3] = infos (hash user -> info), KEYS[4] = rooms with members (set).
-- ARGV = conn, user, info, max members, room. Returns 0 first connection of the user, 1 the
-- user was a member already, 2 the channel is full (nothing recorded).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  return 1
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
return 0
