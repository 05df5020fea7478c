-- KEYS: keys.for_create(task_id, graph_name): shared keys, the task's block, its graph's index.
-- ARGV: task_id, request_hash, fields_json (with 'tenant'), events_json, maxlen
local t = task_at(SHARED_SIZE + 1, ARGV[1])
local graph_index = KEYS[SHARED_SIZE + #TASK_BLOCK + 1]
local existing = redis.call('HGET', t.task, 'request_hash')
if existing then
  if existing == ARGV[2] then return {'exists', redis.call('HGET', t.task, 'status')} end
  return {'conflict', redis.call('HGET', t.task, 'status')}
end
local seq = redis.call('INCR', SHARED.seq)
set_fields(t.task, ARGV[3])
redis.call('HSET', t.task, 'seq', seq, 'request_hash', ARGV[2], 'status', 'queued')
redis.call('ZADD', SHARED.all, seq, t.id)
redis.call('ZADD', STATUS_INDEX.queued, seq, t.id)
redis.call('ZADD', graph_index, seq, t.id)
redis.call('ZADD', t.tenant_index, seq, t.id)
append_events(t, ARGV[4], ARGV[5])
enqueue(t)
return {'created', 'queued'}
