-- KEYS: keys.for_task(task_id): shared keys, the task's block.
-- ARGV: task_id, lease_token, fields_json, del_fields_json, events_json, maxlen, ts
local t = task_at(SHARED_SIZE + 1, ARGV[1])
if redis.call('GET', t.lease) ~= ARGV[2] then return {'lease_lost'} end
if redis.call('HGET', t.task, 'status') ~= 'running' then return {'lease_lost'} end
set_fields(t.task, ARGV[3])
del_fields(t.task, ARGV[4])
redis.call('HSET', t.task, 'updated_at', ARGV[7])
local ids = append_events(t, ARGV[5], ARGV[6])
-- The pause flag rides back with every write so the runner needs no extra read at a boundary.
table.insert(ids, 1, redis.call('HGET', t.task, 'pause_requested') or '0')
table.insert(ids, 1, 'ok')
return ids
