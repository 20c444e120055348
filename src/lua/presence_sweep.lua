-- KEYS[1] = users. ARGV = now, key prefix of conns hashes ("<prefix>:presence:conns:").
-- Expires dead connections of users whose latest expiry passed; returns the users left with
-- none, each claimed by this call alone (ZREM).
local gone = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
for _, user in ipairs(due) do
  local key = ARGV[2] .. user
  local all = redis.call('HGETALL', key)
  local latest = 0
  for i = 1, #all, 2 do
    local exp = tonumber(all[i + 1])
    if exp <= tonumber(ARGV[1]) then
      redis.call('HDEL', key, all[i])
    elseif exp > latest then
      latest = exp
    end
  end
  if redis.call('HLEN', key) == 0 then
    redis.call('DEL', key)
    if redis.call('ZREM', KEYS[1], user) == 1 then table.insert(gone, user) end
  else
    redis.call('ZADD', KEYS[1], latest, user)
  end
end
return gone
