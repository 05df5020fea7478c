"""Lua scripts: every change of a task's status is one atomic step on the Redis server.

All scripts share PRELUDE; its `move()` is the only code that writes a task's status.
Events arrive as ready-made JSON strings so Lua never re-encodes user data.
"""

from __future__ import annotations

from redis_persist.core.auth import DEFAULT_TENANT
from redis_persist.core.status import MOVES, TaskStatus
from redis_persist.store import keys

REMOVED = "deleted"  # what MOVES' None (the task is removed) is called in Lua


def lua_moves() -> str:
    """core.status.MOVES as a Lua table literal: MOVES[status][action] -> next status."""
    by_status: dict[str, list[str]] = {status.value: [] for status in TaskStatus}
    for (status, action), target in MOVES.items():
        by_status[status.value].append(f"{action.value} = '{target.value if target else REMOVED}'")
    rows = ", ".join(f"{status} = {{{', '.join(moves)}}}" for status, moves in by_status.items())
    return "{" + rows + "}"


PRELUDE = """
local P = '%PREFIX%'
local DEFAULT_TENANT = '%DEFAULT%'
-- Generated from core.status.MOVES: the one table of legal moves.
local MOVES = %MOVES%
local function next_status(status, action)
  local moves = MOVES[status]
  return moves and moves[action]
end
local function task_key(id) return P .. 'task:' .. id end
local function lease_key(id) return P .. 'lease:' .. id end
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
    ids[#ids + 1] = redis.call('XADD', P .. 'events:' .. id, 'MAXLEN', '~', maxlen, '*', 'e', ev)
  end
  return ids
end
-- The one place a status is written: record, status index, timestamp.
local function move(id, from, to, ts)
  local key = task_key(id)
  local seq = redis.call('HGET', key, 'seq')
  redis.call('HSET', key, 'status', to, 'updated_at', ts)
  redis.call('ZREM', P .. 'idx:status:' .. from, id)
  redis.call('ZADD', P .. 'idx:status:' .. to, seq, id)
  if from == 'running' or to == 'running' then
    -- Per-tenant running set: the worker's fair scheduler reads it to cap a tenant's running tasks.
    local running = P .. 'idx:running:' .. (redis.call('HGET', key, 'tenant') or DEFAULT_TENANT)
    if to == 'running' then redis.call('ZADD', running, seq, id) else redis.call('ZREM', running, id) end
  end
end
-- Each tenant has its own work stream so one tenant's backlog cannot starve another (store/queue.py).
local function enqueue(id)
  local tenant = redis.call('HGET', task_key(id), 'tenant')
  if tenant and tenant ~= DEFAULT_TENANT then
    redis.call('XADD', P .. 'queue:' .. tenant, '*', 'task_id', id)
    redis.call('SADD', P .. 'tenants', tenant)
  else
    redis.call('XADD', P .. 'queue', '*', 'task_id', id)
  end
end
local function notify(id)
  redis.call('PUBLISH', P .. 'control', id)
end
""".replace("%PREFIX%", keys.PREFIX).replace("%DEFAULT%", DEFAULT_TENANT).replace("%MOVES%", lua_moves())

# ARGV: task_id, request_hash, fields_json (with 'tenant'), events_json, maxlen, graph_name, tenant
CREATE = PRELUDE + """
local id = ARGV[1]
local key = task_key(id)
local existing = redis.call('HGET', key, 'request_hash')
if existing then
  if existing == ARGV[2] then return {'exists', redis.call('HGET', key, 'status')} end
  return {'conflict', redis.call('HGET', key, 'status')}
end
local seq = redis.call('INCR', P .. 'seq')
set_fields(key, ARGV[3])
redis.call('HSET', key, 'seq', seq, 'request_hash', ARGV[2], 'status', 'queued')
redis.call('ZADD', P .. 'idx:all', seq, id)
redis.call('ZADD', P .. 'idx:status:queued', seq, id)
redis.call('ZADD', P .. 'idx:graph:' .. ARGV[6], seq, id)
redis.call('ZADD', P .. 'idx:tenant:' .. ARGV[7], seq, id)
append_events(id, ARGV[4], ARGV[5])
enqueue(id)
return {'created', 'queued'}
"""

# ARGV: task_id, action, guard ('' | 'lease' | 'orphan'), lease_token, fields_json, del_fields_json,
#       events_json, request_events_json, maxlen, ts, expire_at_ms ('' = keep the task)
# guard 'lease': only while the caller holds the task's lease; 'orphan': only once nobody does.
# Returns {outcome, status before}: ok | requested | missing | lease_lost | illegal.
ACT = PRELUDE + """
local id, action, guard = ARGV[1], ARGV[2], ARGV[3]
local key = task_key(id)
local status = redis.call('HGET', key, 'status')
if not status then return {'missing', ''} end
if guard == 'lease' and redis.call('GET', lease_key(id)) ~= ARGV[4] then return {'lease_lost', status} end
local to = next_status(status, action)
if not to or to == 'deleted' then return {'illegal', status} end
if guard == 'orphan' and redis.call('EXISTS', lease_key(id)) == 1 then return {'illegal', status} end
if to == status then
  -- A request: the task's runner carries it out at its next node boundary (record() tells it).
  redis.call('HSET', key, action .. '_requested', '1', 'updated_at', ARGV[10])
  append_events(id, ARGV[8], ARGV[9])
  notify(id)
  return {'requested', status}
end
move(id, status, to, ARGV[10])
set_fields(key, ARGV[5])
del_fields(key, ARGV[6])
append_events(id, ARGV[7], ARGV[9])
if to == 'queued' then enqueue(id) end
-- Only a running task has a lease; whatever ends its run ends the lease with it.
if status == 'running' or to == 'cancelled' then redis.call('DEL', lease_key(id)) end
if ARGV[11] ~= '' then redis.call('ZADD', P .. 'expiry', ARGV[11], id) end
notify(id)
return {'ok', status}
"""

# ARGV: task_id, replica, lease_ttl_ms, ts, maxlen, running_events_json, paused_events_json
# A task whose pause was requested while it was being handed out pauses instead of running.
CLAIM = PRELUDE + """
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
"""

# ARGV: task_id, lease_token, fields_json, del_fields_json, events_json, maxlen, ts
RECORD = PRELUDE + """
local id = ARGV[1]
local key = task_key(id)
if redis.call('GET', lease_key(id)) ~= ARGV[2] then return {'lease_lost'} end
if redis.call('HGET', key, 'status') ~= 'running' then return {'lease_lost'} end
set_fields(key, ARGV[3])
del_fields(key, ARGV[4])
redis.call('HSET', key, 'updated_at', ARGV[7])
local ids = append_events(id, ARGV[5], ARGV[6])
-- The pause flag rides back with every write so the runner needs no extra read at a boundary.
table.insert(ids, 1, redis.call('HGET', key, 'pause_requested') or '0')
table.insert(ids, 1, 'ok')
return ids
"""

# ARGV: lease_ttl_ms, then task_id, token pairs. Per lease: 1 still held (renewed), 2 released because
# the task left running under this very lease (completed, failed, paused, waiting_input, cancelled),
# 0 lost (expired, taken over, or re-queued as an orphan). Only PEXPIRE writes: it works under OOM.
RENEW_LEASES = PRELUDE + """
local held = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local current = redis.call('GET', lease_key(id))
  if current == token then
    redis.call('PEXPIRE', lease_key(id), ARGV[1])
    held[#held + 1] = 1
  else
    local fields = redis.call('HMGET', task_key(id), 'status', 'fence')
    local status, fence = fields[1], fields[2]
    if not current and status and status ~= 'running' and status ~= 'queued'
        and fence == string.match(token, ':(%d+)$') then
      held[#held + 1] = 2
    else
      held[#held + 1] = 0
    end
  end
end
return held
"""

# ARGV: task_id
DELETE = PRELUDE + """
local id = ARGV[1]
local key = task_key(id)
local status = redis.call('HGET', key, 'status')
if not status then return {'missing', ''} end
if next_status(status, 'delete') ~= 'deleted' then return {'illegal', status} end
local graph = redis.call('HGET', key, 'graph_name')
local tenant = redis.call('HGET', key, 'tenant')
redis.call('DEL', key, P .. 'events:' .. id, lease_key(id))
redis.call('ZREM', P .. 'idx:all', id)
redis.call('ZREM', P .. 'idx:status:' .. status, id)
redis.call('ZREM', P .. 'idx:graph:' .. graph, id)
redis.call('ZREM', P .. 'expiry', id)
redis.call('ZREM', P .. 'idx:tenant:' .. (tenant or DEFAULT_TENANT), id)
return {'ok', status}
"""

# ARGV: group, consumer, count, tenant_cap (0 = none), then (stream, tenant) pairs in turn order.
# Takes one message per tenant per round until `count` are taken or no tenant has any (or all are at
# their cap). Returns {'taken', stream, message_id, task_id, ...} or, with nothing to take,
# {'idle', stream, last_entry_id, ...} for the caller to wait from.
FAIR_READ = PRELUDE + """
local group, consumer = ARGV[1], ARGV[2]
local want, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local streams, tenants, room = {}, {}, {}
for i = 5, #ARGV, 2 do
  local n = #streams + 1
  streams[n], tenants[n] = ARGV[i], ARGV[i + 1]
  room[n] = want
  if cap > 0 then room[n] = cap - redis.call('ZCARD', P .. 'idx:running:' .. ARGV[i + 1]) end
end
-- XREADGROUP's reply is {{stream, {{id, {field, value}}}}}; fakeredis drops the outer list.
local function first_entry(reply)
  if not reply or not reply[1] then return nil end
  local entries = type(reply[1]) == 'string' and reply[2] or reply[1][2]
  return entries and entries[1]
end
local out = {'taken'}
local taken = 0
local progress = true
while taken < want and progress do
  progress = false
  for n = 1, #streams do
    if taken < want and room[n] > 0 then
      local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', streams[n], '>')
      local entry = first_entry(reply)
      if entry then
        out[#out + 1] = streams[n]
        out[#out + 1] = entry[1]
        out[#out + 1] = entry[2][2]
        taken = taken + 1
        room[n] = room[n] - 1
        progress = true
      else
        room[n] = 0
      end
    end
  end
end
if taken > 0 then return out end
local idle = {'idle'}
for n = 1, #streams do
  local last = redis.call('XREVRANGE', streams[n], '+', '-', 'COUNT', 1)
  idle[#idle + 1] = streams[n]
  idle[#idle + 1] = (last[1] and last[1][1]) or '0-0'
end
return idle
"""
