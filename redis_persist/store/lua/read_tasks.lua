-- read_tasks: each KEYS[i]'s hash in one reply: one reply to parse instead of one per task
-- (store/tasks.py, TaskStore.list). With ARGV, the values of those fields only (HMGET: nil where a field is
-- missing, all nil once deleted); without, the whole hash as a flat field/value array ({} once deleted).
local found = {}
for i, key in ipairs(KEYS) do
  if #ARGV == 0 then
    found[i] = redis.call('HGETALL', key)
  else
    found[i] = redis.call('HMGET', key, unpack(ARGV))
  end
end
return found
