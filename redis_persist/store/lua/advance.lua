-- ARGV: thread_id, busy_csv. Hands the thread to its oldest pending run once the active one is done.
local thread_id = ARGV[1]
local tkey = thread_key(thread_id)
local pending = K.thread_pending .. thread_id
if redis.call('EXISTS', tkey) == 0 then
  redis.call('SREM', K.threads_pending, thread_id)
  return ''
end
local busy, active = active_busy(tkey, ARGV[2])
if busy then return '' end
while true do
  local next_run = redis.call('LPOP', pending)
  if not next_run then
    redis.call('SREM', K.threads_pending, thread_id)
    return ''
  end
  if redis.call('HGET', task_key(next_run), 'status') == 'queued' then
    take_thread(tkey, next_run)
    enqueue(next_run)
    if redis.call('LLEN', pending) == 0 then redis.call('SREM', K.threads_pending, thread_id) end
    return next_run
  end
end
