-- KEYS: keys.for_lock_for_update(thread_id, active_run): shared keys, the thread's block, its update
--       lease, the task block of the run Python saw holding the thread.
-- ARGV: thread_id, busy_csv, lock_token, ttl_ms, active_run seen.
-- A short lease under which update_state may write; {'retry', ''} if another run took the thread meanwhile.
local th = thread_at(THREAD_AT)
local update_lease = KEYS[AFTER_THREAD]
local a = task_at(AFTER_THREAD + 1, ARGV[5])
if redis.call('EXISTS', th.thread) == 0 then return {'missing', ''} end
if not holds(th, a.id) then return {'retry', ''} end
local busy, active = active_busy(a, ARGV[2])
if busy then return {'busy', active} end
if not redis.call('SET', update_lease, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {'busy', ''}
end
return {'ok', ''}
