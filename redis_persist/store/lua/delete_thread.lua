-- KEYS: keys.for_delete_thread(thread_id, active_run, pending_runs): shared keys, the thread's block,
--       the task block of the run Python saw holding the thread, then one per pending run it saw.
-- ARGV: thread_id, busy_csv, active_run seen, then the pending run ids seen (in list order).
-- Removes the thread unless a run holds or awaits it; returns {'ok', its run ids...}, {'missing'},
-- {'busy', run id}, or {'retry'} when the active run or the pending list changed since Python read them.
local thread_id = ARGV[1]
local th = thread_at(THREAD_AT)
local a = task_at(AFTER_THREAD, ARGV[3])
if redis.call('EXISTS', th.thread) == 0 then return {'missing'} end
local pending = redis.call('LRANGE', th.pending, 0, -1)
if not holds(th, a.id) or #pending ~= #ARGV - 3 then return {'retry'} end
for n, run_id in ipairs(pending) do
  if ARGV[n + 3] ~= run_id then return {'retry'} end
end
local busy, active = active_busy(a, ARGV[2])
if busy then return {'busy', active} end
for n, run_id in ipairs(pending) do
  local p = task_at(AFTER_THREAD + n * #TASK_BLOCK, run_id)
  if redis.call('HGET', p.task, 'status') == 'queued' then return {'busy', run_id} end
end
local runs = redis.call('ZRANGE', th.runs, 0, -1)
redis.call('DEL', th.thread, th.runs, th.pending)
redis.call('ZREM', th.threads, thread_id)
redis.call('SREM', th.threads_pending, thread_id)
local reply = {'ok'}
for _, run_id in ipairs(runs) do reply[#reply + 1] = run_id end
return reply
