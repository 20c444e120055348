-- KEYS[1] = conns:<user> (hash conn -> expiry ms), KEYS[2] = users (zset user -> latest expiry)
-- ARGV = conn, expiry, now, user, max. Adds the connection unless the user already holds `max`
-- live ones; returns 1 when added, 0 when refused. Counting and adding in one script is what
-- keeps two nodes admitting the same user at once from both passing the cap.
local all = redis.call('HGETALL', KEYS[1])
local live = 0
local present = false
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live = live + 1
    if all[i] == ARGV[1] then present = true end
  end
end
if live >= tonumber(ARGV[5]) and not present then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[4])
return 1
