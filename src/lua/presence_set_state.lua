-- KEYS[1] = state:<user>. ARGV = the value read before ('' when there was none), the new
-- value, key prefix of project sets ("<prefix>:presence:project:"), user, then the projects
-- of the new value. Writes only if nobody changed the state since it was read (returns 1;
-- 0 means read again and retry), and adds the user to those projects in the same step, so a
-- concurrent retraction sees either both or neither.
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
for i = 5, #ARGV do
  redis.call('SADD', ARGV[3] .. ARGV[i], ARGV[4])
end
return 1
