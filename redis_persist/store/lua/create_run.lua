-- ARGV: run_id, thread_id, strategy, task_fields_json, events_json, maxlen, graph_name, if_not_exists,
--       thread_fields_json, ts, busy_csv, cancel_events_json, expire_at_ms ('' = keep)
-- Returns {outcome, previous active run}: outcome is created | pending | busy | no_thread.
local run_id, thread_id, strategy = ARGV[1], ARGV[2], ARGV[3]
local tkey = thread_key(thread_id)
if redis.call('EXISTS', tkey) == 0 then
  if ARGV[8] ~= 'create' then return {'no_thread', ''} end
  local tseq = redis.call('INCR', K.seq)
  redis.call('HSET', tkey, 'thread_id', thread_id, 'metadata', '{}', 'seq', tseq, 'created_at', ARGV[10])
  redis.call('ZADD', K.threads, tseq, thread_id)
end
local busy, active = active_busy(tkey, ARGV[11])
if busy and strategy == 'reject' then return {'busy', active} end
local key = task_key(run_id)
local seq = redis.call('INCR', K.seq)
set_fields(key, ARGV[4])
redis.call('HSET', key, 'seq', seq, 'request_hash', run_id, 'status', 'queued')
redis.call('ZADD', K.all, seq, run_id)
redis.call('ZADD', K.status .. 'queued', seq, run_id)
redis.call('ZADD', K.graph .. ARGV[7], seq, run_id)
-- The run is a task of its tenant (task_fields carry it): listed with the tenant's tasks, queued in its queue.
redis.call('ZADD', K.tenant .. (redis.call('HGET', key, 'tenant') or DEFAULT_TENANT), seq, run_id)
append_events(run_id, ARGV[5], ARGV[6])
redis.call('ZADD', K.thread_runs .. thread_id, seq, run_id)
set_fields(tkey, ARGV[9])
redis.call('HSET', tkey, 'updated_at', ARGV[10])
if busy and strategy == 'enqueue' then
  redis.call('RPUSH', K.thread_pending .. thread_id, run_id)
  redis.call('SADD', K.threads_pending, thread_id)
  return {'pending', active}
end
if busy then
  -- interrupt / rollback: the active run is cancelled in this same step, so the two never both hold the thread.
  if strategy == 'rollback' then redis.call('HSET', tkey, 'rollback_of', active) end
  local akey = task_key(active)
  local st = redis.call('HGET', akey, 'status')
  move(active, st, next_status(st, 'cancel'), ARGV[10])  -- every busy status may be cancelled
  redis.call('HDEL', akey, 'pause_requested', 'current_node')
  -- Our own small events, no user data: safe to decode and re-encode with the cancelled run's id.
  local evs = {}
  for _, ev in ipairs(cjson.decode(ARGV[12])) do
    local decoded = cjson.decode(ev)
    decoded['task_id'] = active
    evs[#evs + 1] = cjson.encode(decoded)
  end
  append_events(active, cjson.encode(evs), ARGV[6])
  redis.call('DEL', lease_key(active))
  if ARGV[13] ~= '' then redis.call('ZADD', K.expiry, ARGV[13], active) end
  notify(active)
end
take_thread(tkey, run_id)
enqueue(run_id)
return {'created', active}
