-- KEYS: keys.for_task(task_id): shared keys, the task's block.
-- ARGV: task_id, replica, lease_ttl_ms, ts, maxlen, running_events_json, paused_events_json
-- A task whose pause was requested while it was being handed out pauses instead of running.
local t = task_at(SHARED_SIZE + 1, ARGV[1])
local status = redis.call('HGET', t.task, 'status')
if not status or not next_status(status, 'claim') then return {'skip', status or ''} end
if redis.call('HGET', t.task, 'pause_requested') == '1' then
  move(t, status, next_status(status, 'pause'), ARGV[4])
  redis.call('HDEL', t.task, 'pause_requested', 'current_node')
  append_events(t, ARGV[7], ARGV[5])
  notify(t.id)
  return {'skip', 'paused'}
end
local fence = redis.call('HINCRBY', t.task, 'fence', 1)
local token = ARGV[2] .. ':' .. fence
redis.call('SET', t.lease, token, 'PX', ARGV[3])
move(t, status, next_status(status, 'claim'), ARGV[4])
redis.call('HSET', t.task, 'owner', ARGV[2])
redis.call('HDEL', t.task, 'error', 'interrupt', 'current_node')
redis.call('HINCRBY', t.task, 'attempts', 1)
append_events(t, ARGV[6], ARGV[5])
return {'ok', token}
