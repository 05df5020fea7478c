-- Shared by every script. store/scripts.py puts it first and fills in the KEYS layout of store/keys.py
-- and the table of moves of core/status.py, so neither is copied here by hand.
-- A script touches only keys named in its KEYS (store/keys.py for_<script>): the shared keys first,
-- then blocks of per-task (TASK_BLOCK) or per-thread (THREAD_BLOCK) keys.
local DEFAULT_TENANT = '%DEFAULT%'
local SCOPE_SEPARATOR = '%SEPARATOR%'
local CONTROL_CHANNEL = '%CONTROL%'  -- a pub/sub channel, not a key
-- status -> its index key, and the other shared keys (keys.shared_keys()).
local STATUS_INDEX = %STATUS_INDEX%
local SHARED = %SHARED%
local SHARED_SIZE = %SHARED_SIZE%
local TASK_BLOCK = %TASK_BLOCK%
local THREAD_BLOCK = %THREAD_BLOCK%
-- Generated from core.status.MOVES: the one table of legal moves.
local MOVES = %MOVES%
local function next_status(status, action)
  local moves = MOVES[status]
  return moves and moves[action]
end
local function block(first, names)
  local keys = {}
  for i, name in ipairs(names) do keys[name] = KEYS[first + i - 1] end
  return keys
end
-- core.auth.split_scoped_id: the tenant whose index, queue and running set task_keys() names.
local function tenant_of(id)
  local at = string.find(id, SCOPE_SEPARATOR, 1, true)
  if at then return string.sub(id, 1, at - 1) end
  return DEFAULT_TENANT
end
-- The task block starting at KEYS[first] for task `id` ('' = none). Before anything is written, a stored
-- tenant that is not the id's fails the script loudly: its tenant keys would be the wrong ones.
local function task_at(first, id)
  local t = block(first, TASK_BLOCK)
  t.id = id
  if id ~= '' then
    local stored = redis.call('HGET', t.task, 'tenant')
    if not stored and redis.call('EXISTS', t.task) == 1 then stored = DEFAULT_TENANT end
    if stored and stored ~= tenant_of(id) then
      error('task ' .. id .. ' is stored with tenant ' .. stored .. ', not its id\'s')
    end
  end
  return t
end
local function thread_at(first)
  return block(first, THREAD_BLOCK)
end
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
local function append_events(t, events_json, maxlen)
  local ids = {}
  for _, ev in ipairs(cjson.decode(events_json)) do
    ids[#ids + 1] = redis.call('XADD', t.events, 'MAXLEN', '~', maxlen, '*', 'e', ev)
  end
  return ids
end
-- The one place a status is written: record, status index, timestamp.
local function move(t, from, to, ts)
  local seq = redis.call('HGET', t.task, 'seq')
  redis.call('HSET', t.task, 'status', to, 'updated_at', ts)
  redis.call('ZREM', STATUS_INDEX[from], t.id)
  redis.call('ZADD', STATUS_INDEX[to], seq, t.id)
  if from == 'running' or to == 'running' then
    -- Per-tenant running set: the worker's fair scheduler reads it to cap a tenant's running tasks.
    if to == 'running' then redis.call('ZADD', t.running, seq, t.id) else redis.call('ZREM', t.running, t.id) end
  end
end
-- Each tenant has its own work stream so one tenant's backlog cannot starve another (store/queue.py).
local function enqueue(t)
  redis.call('XADD', t.queue, '*', 'task_id', t.id)
  local tenant = tenant_of(t.id)
  if tenant ~= DEFAULT_TENANT then redis.call('SADD', SHARED.tenants, tenant) end
end
local function notify(id)
  redis.call('PUBLISH', CONTROL_CHANNEL, id)
end
