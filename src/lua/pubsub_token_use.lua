-- Checks (ARGV[2] = '0') or consumes (ARGV[2] = '1') a temporary client path token.
-- KEYS[1] = token key; ARGV[1] = the plate of the request.
-- Returns {'invalid'} | {'expired'} | {'exhausted'} | {'ok', channel, pattern, max_dur}.
local h = redis.call('HMGET', KEYS[1], 'plate', 'deadline', 'max_uses', 'uses', 'channel', 'pattern', 'max_dur')
if not h[1] or h[1] ~= ARGV[1] then
  return {'invalid'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(h[2]) then
  return {'expired'}
end
local max_uses = tonumber(h[3])
if max_uses > 0 and tonumber(h[4]) >= max_uses then
  return {'exhausted'}
end
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[1], 'uses', 1)
end
return {'ok', h[5], h[6], h[7]}
