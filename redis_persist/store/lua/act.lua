-- KEYS: keys.for_task(task_id): shared keys, the task's block.
-- ARGV: task_id, action, guard ('' | 'lease' | 'orphan'), lease_token, fields_json, del_fields_json,
--       events_json, request_events_json, maxlen, ts, expire_at_ms ('' = keep the task),
--       compact_at_ms ('' = keep its checkpoints: compaction off, or the move is not to a final status)
-- guard 'lease': only while the caller holds the task's lease; 'orphan': only once nobody does.
-- Returns {outcome, status before}: ok | requested | missing | lease_lost | illegal.
local action, guard = ARGV[2], ARGV[3]
local t = task_at(SHARED_SIZE + 1, ARGV[1])
local status = redis.call('HGET', t.task, 'status')
if not status then return {'missing', ''} end
if guard == 'lease' and redis.call('GET', t.lease) ~= ARGV[4] then return {'lease_lost', status} end
local to = next_status(status, action)
if not to or to == 'deleted' then return {'illegal', status} end
if guard == 'orphan' and redis.call('EXISTS', t.lease) == 1 then return {'illegal', status} end
if to == status then
  -- A request: the task's runner carries it out at its next node boundary (record() tells it).
  redis.call('HSET', t.task, action .. '_requested', '1', 'updated_at', ARGV[10])
  append_events(t, ARGV[8], ARGV[9])
  notify(t.id)
  return {'requested', status}
end
move(t, status, to, ARGV[10])
set_fields(t.task, ARGV[5])
del_fields(t.task, ARGV[6])
append_events(t, ARGV[7], ARGV[9])
if to == 'queued' then enqueue(t) end
-- Only a running task has a lease; whatever ends its run ends the lease with it.
if status == 'running' or to == 'cancelled' then redis.call('DEL', t.lease) end
if ARGV[11] ~= '' then redis.call('ZADD', SHARED.expiry, ARGV[11], t.id) end
-- A finished task of its own (a run on a LangGraph thread has `thread_id`: the thread keeps its checkpoints)
-- is due for compaction in this same step, so a crash right after the move still leaves it to the sweep.
if ARGV[12] ~= '' and redis.call('HEXISTS', t.task, 'thread_id') == 0 then
  redis.call('ZADD', SHARED.compact, ARGV[12], t.id)
end
notify(t.id)
return {'ok', status}
