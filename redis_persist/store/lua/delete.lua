-- KEYS: keys.for_delete(task_id, graph_name): shared keys, the task's block, its graph's index.
-- ARGV: task_id, graph_name (as the caller read it). Returns {outcome, status}: ok | missing | illegal,
-- or {'retry', stored graph_name} when the graph index given is not the task's (read again and retry).
local t = task_at(SHARED_SIZE + 1, ARGV[1])
local graph_index = KEYS[SHARED_SIZE + #TASK_BLOCK + 1]
local status = redis.call('HGET', t.task, 'status')
if not status then return {'missing', ''} end
if next_status(status, 'delete') ~= 'deleted' then return {'illegal', status} end
local graph = redis.call('HGET', t.task, 'graph_name') or ''
if graph ~= ARGV[2] then return {'retry', graph} end
redis.call('DEL', t.task, t.events, t.lease)
redis.call('ZREM', SHARED.all, t.id)
redis.call('ZREM', STATUS_INDEX[status], t.id)
redis.call('ZREM', graph_index, t.id)
redis.call('ZREM', SHARED.expiry, t.id)
redis.call('ZREM', SHARED.compact, t.id)
redis.call('ZREM', t.tenant_index, t.id)
return {'ok', status}
