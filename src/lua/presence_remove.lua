-- KEYS[1] = conns:<user>, KEYS[2] = users. ARGV = conn, now, user.
-- Returns 1 when this call removed the user's last live connection (exactly one caller does:
-- ZREM succeeds once).
redis.call('HDEL', KEYS[1], ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= tonumber(ARGV[2]) then redis.call('HDEL', KEYS[1], all[i]) end
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  return redis.call('ZREM', KEYS[2], ARGV[3])
end
return 0
