-- KEYS as in channel_presence_join.lua. ARGV = conn, room.
-- Returns 1 when this call removed the key's last connection in the channel (exactly one
-- caller, a sweep included, sees it: the conn entry is deleted once).
local key = redis.call('HGET', KEYS[1], ARGV[1])
if not key then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if redis.call('HINCRBY', KEYS[2], key, -1) > 0 then return 0 end
redis.call('HDEL', KEYS[2], key)
redis.call('HDEL', KEYS[3], key)
if redis.call('HLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[2]) end
return 1
