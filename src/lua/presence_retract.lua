-- KEYS[1] = state:<user>. ARGV = key prefix of project sets, user. Deletes the state and the
-- user's project memberships in one step and returns the state (nil when none): of two nodes
-- retracting at once one gets it, and an announcement cannot land between the two halves.
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
redis.call('DEL', KEYS[1])
local ok, state = pcall(cjson.decode, raw)
if ok and type(state) == 'table' and type(state.projects) == 'table' then
  for _, p in ipairs(state.projects) do
    redis.call('SREM', ARGV[1] .. p, ARGV[2])
  end
end
return raw
