-- KEYS: keys.for_create_run(thread_id, run_id, graph_name, active_run): shared keys, the thread's block,
--       the new run's task block, its graph's index, the task block of the run Python saw holding the thread.
-- ARGV: run_id, thread_id, strategy, task_fields_json, events_json, maxlen, if_not_exists,
--       thread_fields_json, ts, busy_csv, cancel_events_json, expire_at_ms ('' = keep), active_run seen
-- Returns {outcome, previous active run}: outcome is created | pending | busy | no_thread, or
-- {'retry', active run now} when another run took the thread since Python read it.
local thread_id, strategy = ARGV[2], ARGV[3]
local th = thread_at(THREAD_AT)
local run = task_at(AFTER_THREAD, ARGV[1])
local graph_index = KEYS[AFTER_THREAD + #TASK_BLOCK]
local a = task_at(AFTER_THREAD + #TASK_BLOCK + 1, ARGV[13])
if redis.call('EXISTS', th.thread) == 0 then
  if ARGV[7] ~= 'create' then return {'no_thread', ''} end
  local tseq = redis.call('INCR', SHARED.seq)
  redis.call('HSET', th.thread, 'thread_id', thread_id, 'metadata', '{}', 'seq', tseq, 'created_at', ARGV[9])
  redis.call('ZADD', th.threads, tseq, thread_id)
end
if not holds(th, a.id) then return {'retry', redis.call('HGET', th.thread, 'active_run') or ''} end
local busy, active = active_busy(a, ARGV[10])
if busy and strategy == 'reject' then return {'busy', active} end
local seq = redis.call('INCR', SHARED.seq)
set_fields(run.task, ARGV[4])
redis.call('HSET', run.task, 'seq', seq, 'request_hash', run.id, 'status', 'queued')
redis.call('ZADD', SHARED.all, seq, run.id)
redis.call('ZADD', STATUS_INDEX.queued, seq, run.id)
redis.call('ZADD', graph_index, seq, run.id)
-- The run is a task of its tenant (its id's scope): listed with the tenant's tasks, queued in its queue.
redis.call('ZADD', run.tenant_index, seq, run.id)
append_events(run, ARGV[5], ARGV[6])
redis.call('ZADD', th.runs, seq, run.id)
set_fields(th.thread, ARGV[8])
redis.call('HSET', th.thread, 'updated_at', ARGV[9])
if busy and strategy == 'enqueue' then
  redis.call('RPUSH', th.pending, run.id)
  redis.call('SADD', th.threads_pending, thread_id)
  return {'pending', active}
end
if busy then
  -- interrupt / rollback: the active run is cancelled in this same step, so the two never both hold the thread.
  if strategy == 'rollback' then redis.call('HSET', th.thread, 'rollback_of', active) end
  local st = redis.call('HGET', a.task, 'status')
  move(a, st, next_status(st, 'cancel'), ARGV[9])  -- every busy status may be cancelled
  redis.call('HDEL', a.task, 'pause_requested', 'current_node')
  -- Our own small events, no user data: safe to decode and re-encode with the cancelled run's id.
  local evs = {}
  for _, ev in ipairs(cjson.decode(ARGV[11])) do
    local decoded = cjson.decode(ev)
    decoded['task_id'] = active
    evs[#evs + 1] = cjson.encode(decoded)
  end
  append_events(a, cjson.encode(evs), ARGV[6])
  redis.call('DEL', a.lease)
  if ARGV[12] ~= '' then redis.call('ZADD', SHARED.expiry, ARGV[12], active) end
  notify(active)
end
take_thread(th, run)
enqueue(run)
return {'created', active}
