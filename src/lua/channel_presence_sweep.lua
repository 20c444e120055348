-- KEYS as in channel_presence_join.lua. ARGV = room, key prefix of the nodes' liveness keys.
-- A connection id is "<node>.<counter>"; connections of a node whose liveness key expired (the
-- node died) are removed. Returns the users left with no connection, each reported once.
local gone = {}
local alive = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local conn, user = all[i], all[i + 1]
  local node = string.match(conn, '^(%d+)%.')
  local ok = node and alive[node]
  if node and ok == nil then
    ok = redis.call('EXISTS', ARGV[2] .. node) == 1
    alive[node] = ok
  end
  if not ok then
    redis.call('HDEL', KEYS[1], conn)
    if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
      redis.call('HDEL', KEYS[2], user)
      redis.call('HDEL', KEYS[3], user)
      table.insert(gone, user)
    end
  end
end
if redis.call('HLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return gone
