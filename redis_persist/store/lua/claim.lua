-- ARGV: task_id, replica, lease_ttl_ms, ts, maxlen, running_events_json, paused_events_json
-- A task whose pause was requested while it was being handed out pauses instead of running.
local id = ARGV[1]
local key = task_key(id)
local status = redis.call('HGET', key, 'status')
if not status or not next_status(status, 'claim') then return {'skip', status or ''} end
if redis.call('HGET', key, 'pause_requested') == '1' then
  move(id, status, next_status(status, 'pause'), ARGV[4])
  redis.call('HDEL', key, 'pause_requested', 'current_node')
  append_events(id, ARGV[7], ARGV[5])
  notify(id)
  return {'skip', 'paused'}
end
local fence = redis.call('HINCRBY', key, 'fence', 1)
local token = ARGV[2] .. ':' .. fence
redis.call('SET', lease_key(id), token, 'PX', ARGV[3])
move(id, status, next_status(status, 'claim'), ARGV[4])
redis.call('HSET', key, 'owner', ARGV[2])
redis.call('HDEL', key, 'error', 'interrupt', 'current_node')
redis.call('HINCRBY', key, 'attempts', 1)
append_events(id, ARGV[6], ARGV[5])
return {'ok', token}
