-- Shared by every script (store/scripts.py puts it first and fills in the key names of store/keys.py
-- and the table of moves of core/status.py, so neither is copied here by hand).
local K = %KEYS%
local DEFAULT_TENANT = '%DEFAULT%'
-- Generated from core.status.MOVES: the one table of legal moves.
local MOVES = %MOVES%
local function next_status(status, action)
  local moves = MOVES[status]
  return moves and moves[action]
end
local function task_key(id) return K.task .. id end
local function lease_key(id) return K.lease .. id end
local function listed(csv, value)
  for item in string.gmatch(csv, '[^,]+') do
    if item == value then return true end
  end
  return false
end
local function set_fields(key, fields_json)
  local args = {}
  for k, v in pairs(cjson.decode(fields_json)) do
    args[#args + 1] = k
    args[#args + 1] = v
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
end
local function del_fields(key, names_json)
  local names = cjson.decode(names_json)
  if #names > 0 then redis.call('HDEL', key, unpack(names)) end
end
local function append_events(id, events_json, maxlen)
  local ids = {}
  for _, ev in ipairs(cjson.decode(events_json)) do
    ids[#ids + 1] = redis.call('XADD', K.events .. id, 'MAXLEN', '~', maxlen, '*', 'e', ev)
  end
  return ids
end
-- The one place a status is written: record, status index, timestamp.
local function move(id, from, to, ts)
  local key = task_key(id)
  local seq = redis.call('HGET', key, 'seq')
  redis.call('HSET', key, 'status', to, 'updated_at', ts)
  redis.call('ZREM', K.status .. from, id)
  redis.call('ZADD', K.status .. to, seq, id)
  if from == 'running' or to == 'running' then
    -- Per-tenant running set: the worker's fair scheduler reads it to cap a tenant's running tasks.
    local running = K.running .. (redis.call('HGET', key, 'tenant') or DEFAULT_TENANT)
    if to == 'running' then redis.call('ZADD', running, seq, id) else redis.call('ZREM', running, id) end
  end
end
-- Each tenant has its own work stream so one tenant's backlog cannot starve another (store/queue.py).
local function enqueue(id)
  local tenant = redis.call('HGET', task_key(id), 'tenant')
  if tenant and tenant ~= DEFAULT_TENANT then
    redis.call('XADD', K.queue .. ':' .. tenant, '*', 'task_id', id)
    redis.call('SADD', K.tenants, tenant)
  else
    redis.call('XADD', K.queue, '*', 'task_id', id)
  end
end
local function notify(id)
  redis.call('PUBLISH', K.control, id)
end
