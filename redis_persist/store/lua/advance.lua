-- KEYS: keys.for_advance(thread_id, active_run, next_run): shared keys, the thread's block, the task
--       blocks of the run Python saw holding the thread and of the head of its pending list ('' = none).
-- ARGV: thread_id, busy_csv, active_run seen, next_run seen.
-- Hands the thread to its oldest pending run once the active one is done. Returns {'started', run id},
-- {'idle'} (nothing to start now), {'again'} (dropped a pending run that is no longer queued: look at the
-- next one) or {'retry'} (the thread's active run or pending head changed since Python read them).
local thread_id = ARGV[1]
local th = thread_at(THREAD_AT)
local a = task_at(AFTER_THREAD, ARGV[3])
local r = task_at(AFTER_THREAD + #TASK_BLOCK, ARGV[4])
if redis.call('EXISTS', th.thread) == 0 then
  redis.call('SREM', th.threads_pending, thread_id)
  return {'idle'}
end
if not holds(th, a.id) or (redis.call('LINDEX', th.pending, 0) or '') ~= r.id then return {'retry'} end
if active_busy(a, ARGV[2]) then return {'idle'} end
if r.id == '' then
  redis.call('SREM', th.threads_pending, thread_id)
  return {'idle'}
end
redis.call('LPOP', th.pending)
local queued = redis.call('HGET', r.task, 'status') == 'queued'
if queued then
  take_thread(th, r)
  enqueue(r)
end
if redis.call('LLEN', th.pending) == 0 then redis.call('SREM', th.threads_pending, thread_id) end
if queued then return {'started', r.id} end
return {'again'}
