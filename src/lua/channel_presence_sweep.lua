-- KEYS as in channel_presence_join.lua. ARGV = room, key prefix of the nodes' liveness keys.
-- A connection id is "<node>.<rest>"; connections of a node whose liveness key expired (the
-- node died) are removed. Returns, per removed connection, its id, key, info and "1" when it
-- was its key's last (else "0"), each reported once.
local gone = {}
local alive = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local conn, key = all[i], all[i + 1]
  local node = string.match(conn, '^(%d+)%.')
  local ok = node and alive[node]
  if node and ok == nil then
    ok = redis.call('EXISTS', ARGV[2] .. node) == 1
    alive[node] = ok
  end
  if not ok then
    local info = redis.call('HGET', KEYS[5], conn) or 'null'
    redis.call('HDEL', KEYS[1], conn)
    redis.call('HDEL', KEYS[5], conn)
    local last = '0'
    if redis.call('HINCRBY', KEYS[2], key, -1) <= 0 then
      redis.call('HDEL', KEYS[2], key)
      redis.call('HDEL', KEYS[3], key)
      last = '1'
    end
    table.insert(gone, conn)
    table.insert(gone, key)
    table.insert(gone, info)
    table.insert(gone, last)
  end
end
if redis.call('HLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return gone
