-- ARGV: task_id, action, guard ('' | 'lease' | 'orphan'), lease_token, fields_json, del_fields_json,
--       events_json, request_events_json, maxlen, ts, expire_at_ms ('' = keep the task)
-- guard 'lease': only while the caller holds the task's lease; 'orphan': only once nobody does.
-- Returns {outcome, status before}: ok | requested | missing | lease_lost | illegal.
local id, action, guard = ARGV[1], ARGV[2], ARGV[3]
local key = task_key(id)
local status = redis.call('HGET', key, 'status')
if not status then return {'missing', ''} end
if guard == 'lease' and redis.call('GET', lease_key(id)) ~= ARGV[4] then return {'lease_lost', status} end
local to = next_status(status, action)
if not to or to == 'deleted' then return {'illegal', status} end
if guard == 'orphan' and redis.call('EXISTS', lease_key(id)) == 1 then return {'illegal', status} end
if to == status then
  -- A request: the task's runner carries it out at its next node boundary (record() tells it).
  redis.call('HSET', key, action .. '_requested', '1', 'updated_at', ARGV[10])
  append_events(id, ARGV[8], ARGV[9])
  notify(id)
  return {'requested', status}
end
move(id, status, to, ARGV[10])
set_fields(key, ARGV[5])
del_fields(key, ARGV[6])
append_events(id, ARGV[7], ARGV[9])
if to == 'queued' then enqueue(id) end
-- Only a running task has a lease; whatever ends its run ends the lease with it.
if status == 'running' or to == 'cancelled' then redis.call('DEL', lease_key(id)) end
if ARGV[11] ~= '' then redis.call('ZADD', K.expiry, ARGV[11], id) end
notify(id)
return {'ok', status}
