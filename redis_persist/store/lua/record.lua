-- KEYS: keys.for_task(task_id): shared keys, the task's block.
-- ARGV: task_id, lease_token, fields_json, del_fields_json, events_json, maxlen, ts
--       [, go_on_fields_json, go_on_events_json]: written after the rest only if no pause is requested (the
--       start of the next node, recorded with the checkpoint that precedes it: engine/runner.py)
local t = task_at(SHARED_SIZE + 1, ARGV[1])
if redis.call('GET', t.lease) ~= ARGV[2] then return {'lease_lost'} end
if redis.call('HGET', t.task, 'status') ~= 'running' then return {'lease_lost'} end
set_fields(t.task, ARGV[3])
del_fields(t.task, ARGV[4])
redis.call('HSET', t.task, 'updated_at', ARGV[7])
local ids = append_events(t, ARGV[5], ARGV[6])
-- The pause flag rides back with every write so the runner needs no extra read at a boundary.
local pause_requested = redis.call('HGET', t.task, 'pause_requested') or '0'
if ARGV[8] and pause_requested ~= '1' then
  set_fields(t.task, ARGV[8])
  for _, id in ipairs(append_events(t, ARGV[9], ARGV[6])) do ids[#ids + 1] = id end
end
table.insert(ids, 1, pause_requested)
table.insert(ids, 1, 'ok')
return ids
