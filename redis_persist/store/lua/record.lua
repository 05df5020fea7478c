-- ARGV: task_id, lease_token, fields_json, del_fields_json, events_json, maxlen, ts
local id = ARGV[1]
local key = task_key(id)
if redis.call('GET', lease_key(id)) ~= ARGV[2] then return {'lease_lost'} end
if redis.call('HGET', key, 'status') ~= 'running' then return {'lease_lost'} end
set_fields(key, ARGV[3])
del_fields(key, ARGV[4])
redis.call('HSET', key, 'updated_at', ARGV[7])
local ids = append_events(id, ARGV[5], ARGV[6])
-- The pause flag rides back with every write so the runner needs no extra read at a boundary.
table.insert(ids, 1, redis.call('HGET', key, 'pause_requested') or '0')
table.insert(ids, 1, 'ok')
return ids
