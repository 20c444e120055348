-- Issues a temporary client path token. KEYS[1] = token key.
-- ARGV: plate, channel, pattern (0/1), max_dur ms, expiry ms, max_uses, tombstone ms.
-- The connect deadline is Redis time + expiry, so every node judges it by the same clock.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1],
  'plate', ARGV[1], 'channel', ARGV[2], 'pattern', ARGV[3], 'max_dur', ARGV[4],
  'deadline', now + tonumber(ARGV[5]), 'max_uses', ARGV[6], 'uses', 0)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]) + tonumber(ARGV[7]))
return 1
