-- ARGV: task_id, request_hash, fields_json (with 'tenant'), events_json, maxlen, graph_name, tenant
local id = ARGV[1]
local key = task_key(id)
local existing = redis.call('HGET', key, 'request_hash')
if existing then
  if existing == ARGV[2] then return {'exists', redis.call('HGET', key, 'status')} end
  return {'conflict', redis.call('HGET', key, 'status')}
end
local seq = redis.call('INCR', K.seq)
set_fields(key, ARGV[3])
redis.call('HSET', key, 'seq', seq, 'request_hash', ARGV[2], 'status', 'queued')
redis.call('ZADD', K.all, seq, id)
redis.call('ZADD', K.status .. 'queued', seq, id)
redis.call('ZADD', K.graph .. ARGV[6], seq, id)
redis.call('ZADD', K.tenant .. ARGV[7], seq, id)
append_events(id, ARGV[4], ARGV[5])
enqueue(id)
return {'created', 'queued'}
