-- KEYS[1] = conns of the channel (hash conn -> key), KEYS[2] = counts (hash key -> conns),
-- KEYS[3] = member infos (hash key -> its first connection's info), KEYS[4] = rooms with
-- members (set), KEYS[5] = connection infos (hash conn -> info).
-- ARGV = conn, key, info, max members, room. Returns 0 first connection of the key, 1 the
-- key was a member already (a connection joining again only has its info replaced), 2 the
-- channel is full (nothing recorded).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[3])
  return 1
end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[3])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  return 1
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
return 0
