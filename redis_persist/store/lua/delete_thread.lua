-- ARGV: thread_id, busy_csv. Removes the thread unless a run holds it; returns its run ids.
local thread_id = ARGV[1]
local tkey = thread_key(thread_id)
if redis.call('EXISTS', tkey) == 0 then return {'missing'} end
local busy, active = active_busy(tkey, ARGV[2])
if busy then return {'busy', active} end
for _, run_id in ipairs(redis.call('LRANGE', K.thread_pending .. thread_id, 0, -1)) do
  if redis.call('HGET', task_key(run_id), 'status') == 'queued' then return {'busy', run_id} end
end
local runs = redis.call('ZRANGE', K.thread_runs .. thread_id, 0, -1)
redis.call('DEL', tkey, K.thread_runs .. thread_id, K.thread_pending .. thread_id)
redis.call('ZREM', K.threads, thread_id)
redis.call('SREM', K.threads_pending, thread_id)
local reply = {'ok'}
for _, run_id in ipairs(runs) do reply[#reply + 1] = run_id end
return reply
