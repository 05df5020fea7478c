-- read_tasks: each KEYS[i]'s hash as a flat field/value array ({} once deleted), in one reply.
-- A page of the task list: one reply to parse instead of one per task (store/tasks.py, TaskStore.list).
local found = {}
for i, key in ipairs(KEYS) do
  found[i] = redis.call('HGETALL', key)
end
return found
