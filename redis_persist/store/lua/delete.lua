-- ARGV: task_id
local id = ARGV[1]
local key = task_key(id)
local status = redis.call('HGET', key, 'status')
if not status then return {'missing', ''} end
if next_status(status, 'delete') ~= 'deleted' then return {'illegal', status} end
local graph = redis.call('HGET', key, 'graph_name')
local tenant = redis.call('HGET', key, 'tenant')
redis.call('DEL', key, K.events .. id, lease_key(id))
redis.call('ZREM', K.all, id)
redis.call('ZREM', K.status .. status, id)
redis.call('ZREM', K.graph .. graph, id)
redis.call('ZREM', K.expiry, id)
redis.call('ZREM', K.tenant .. (tenant or DEFAULT_TENANT), id)
return {'ok', status}
