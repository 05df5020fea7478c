"""Lua scripts for threads and their runs: one active run per thread, decided atomically on the server.

They share the task scripts' PRELUDE, so a run is created, queued and cancelled exactly as a task is.
A thread is busy while the run holding it (`active_run`) is queued, running or paused.
"""

from __future__ import annotations

from redis_persist.store.scripts import PRELUDE

THREAD_PRELUDE = PRELUDE + """
local function thread_key(id) return P .. 'thread:' .. id end
local function active_busy(tkey, busy_csv)
  local active = redis.call('HGET', tkey, 'active_run')
  if not active or active == '' then return false, '' end
  local st = redis.call('HGET', task_key(active), 'status')
  return (st and listed(busy_csv, st)) or false, active
end
-- A run taking the thread after a rollback starts from before the rolled-back run's checkpoints.
local function take_thread(tkey, run_id)
  redis.call('HSET', tkey, 'active_run', run_id)
  local rolled_back = redis.call('HGET', tkey, 'rollback_of')
  if rolled_back then
    redis.call('HSET', task_key(run_id), 'rollback_of', rolled_back)
    redis.call('HDEL', tkey, 'rollback_of')
  end
end
"""

# ARGV: thread_id, fields_json, ts, if_exists ('raise'|'do_nothing')
CREATE_THREAD = THREAD_PRELUDE + """
local key = thread_key(ARGV[1])
if redis.call('EXISTS', key) == 1 then
  if ARGV[4] == 'do_nothing' then return 'exists' end
  return 'conflict'
end
local seq = redis.call('INCR', P .. 'seq')
set_fields(key, ARGV[2])
redis.call('HSET', key, 'seq', seq, 'created_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('ZADD', P .. 'idx:threads', seq, ARGV[1])
return 'created'
"""

# ARGV: run_id, thread_id, strategy, task_fields_json, events_json, maxlen, graph_name, if_not_exists,
#       thread_fields_json, ts, busy_csv, cancel_events_json, expire_at_ms ('' = keep)
# Returns {outcome, previous active run}: outcome is created | pending | busy | no_thread.
CREATE_RUN = THREAD_PRELUDE + """
local run_id, thread_id, strategy = ARGV[1], ARGV[2], ARGV[3]
local tkey = thread_key(thread_id)
if redis.call('EXISTS', tkey) == 0 then
  if ARGV[8] ~= 'create' then return {'no_thread', ''} end
  local tseq = redis.call('INCR', P .. 'seq')
  redis.call('HSET', tkey, 'thread_id', thread_id, 'metadata', '{}', 'seq', tseq, 'created_at', ARGV[10])
  redis.call('ZADD', P .. 'idx:threads', tseq, thread_id)
end
local busy, active = active_busy(tkey, ARGV[11])
if busy and strategy == 'reject' then return {'busy', active} end
local key = task_key(run_id)
local seq = redis.call('INCR', P .. 'seq')
set_fields(key, ARGV[4])
redis.call('HSET', key, 'seq', seq, 'request_hash', run_id, 'status', 'queued')
redis.call('ZADD', P .. 'idx:all', seq, run_id)
redis.call('ZADD', P .. 'idx:status:queued', seq, run_id)
redis.call('ZADD', P .. 'idx:graph:' .. ARGV[7], seq, run_id)
-- The run is a task of its tenant (task_fields carry it): listed with the tenant's tasks, queued in its queue.
redis.call('ZADD', P .. 'idx:tenant:' .. (redis.call('HGET', key, 'tenant') or DEFAULT_TENANT), seq, run_id)
append_events(run_id, ARGV[5], ARGV[6])
redis.call('ZADD', P .. 'thread-runs:' .. thread_id, seq, run_id)
set_fields(tkey, ARGV[9])
redis.call('HSET', tkey, 'updated_at', ARGV[10])
if busy and strategy == 'enqueue' then
  redis.call('RPUSH', P .. 'thread-pending:' .. thread_id, run_id)
  redis.call('SADD', P .. 'threads-pending', thread_id)
  return {'pending', active}
end
if busy then
  -- interrupt / rollback: the active run is cancelled in this same step, so the two never both hold the thread.
  if strategy == 'rollback' then redis.call('HSET', tkey, 'rollback_of', active) end
  local akey = task_key(active)
  local st = redis.call('HGET', akey, 'status')
  move(active, st, next_status(st, 'cancel'), ARGV[10])  -- every busy status may be cancelled
  redis.call('HDEL', akey, 'pause_requested', 'current_node')
  -- Our own small events, no user data: safe to decode and re-encode with the cancelled run's id.
  local evs = {}
  for _, ev in ipairs(cjson.decode(ARGV[12])) do
    local decoded = cjson.decode(ev)
    decoded['task_id'] = active
    evs[#evs + 1] = cjson.encode(decoded)
  end
  append_events(active, cjson.encode(evs), ARGV[6])
  redis.call('DEL', lease_key(active))
  if ARGV[13] ~= '' then redis.call('ZADD', P .. 'expiry', ARGV[13], active) end
  notify(active)
end
take_thread(tkey, run_id)
enqueue(run_id)
return {'created', active}
"""

# ARGV: thread_id, busy_csv. Hands the thread to its oldest pending run once the active one is done.
ADVANCE = THREAD_PRELUDE + """
local thread_id = ARGV[1]
local tkey = thread_key(thread_id)
local pending = P .. 'thread-pending:' .. thread_id
if redis.call('EXISTS', tkey) == 0 then
  redis.call('SREM', P .. 'threads-pending', thread_id)
  return ''
end
local busy, active = active_busy(tkey, ARGV[2])
if busy then return '' end
while true do
  local next_run = redis.call('LPOP', pending)
  if not next_run then
    redis.call('SREM', P .. 'threads-pending', thread_id)
    return ''
  end
  if redis.call('HGET', task_key(next_run), 'status') == 'queued' then
    take_thread(tkey, next_run)
    enqueue(next_run)
    if redis.call('LLEN', pending) == 0 then redis.call('SREM', P .. 'threads-pending', thread_id) end
    return next_run
  end
end
"""

# ARGV: thread_id, busy_csv. Removes the thread unless a run holds it; returns its run ids.
DELETE_THREAD = THREAD_PRELUDE + """
local thread_id = ARGV[1]
local tkey = thread_key(thread_id)
if redis.call('EXISTS', tkey) == 0 then return {'missing'} end
local busy, active = active_busy(tkey, ARGV[2])
if busy then return {'busy', active} end
for _, run_id in ipairs(redis.call('LRANGE', P .. 'thread-pending:' .. thread_id, 0, -1)) do
  if redis.call('HGET', task_key(run_id), 'status') == 'queued' then return {'busy', run_id} end
end
local runs = redis.call('ZRANGE', P .. 'thread-runs:' .. thread_id, 0, -1)
redis.call('DEL', tkey, P .. 'thread-runs:' .. thread_id, P .. 'thread-pending:' .. thread_id)
redis.call('ZREM', P .. 'idx:threads', thread_id)
redis.call('SREM', P .. 'threads-pending', thread_id)
local reply = {'ok'}
for _, run_id in ipairs(runs) do reply[#reply + 1] = run_id end
return reply
"""

# ARGV: thread_id, busy_csv, lock_token, ttl_ms. A short lease under which update_state may write.
LOCK_FOR_UPDATE = THREAD_PRELUDE + """
local tkey = thread_key(ARGV[1])
if redis.call('EXISTS', tkey) == 0 then return {'missing', ''} end
local busy, active = active_busy(tkey, ARGV[2])
if busy then return {'busy', active} end
if not redis.call('SET', lease_key('thread-update:' .. ARGV[1]), ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {'busy', ''}
end
return {'ok', ''}
"""

# ARGV: lease id, token. Deletes a lease only if it is still the caller's.
RELEASE_LEASE = THREAD_PRELUDE + """
if redis.call('GET', lease_key(ARGV[1])) == ARGV[2] then redis.call('DEL', lease_key(ARGV[1])) return 1 end
return 0
"""

# ARGV: now_ms, hold_ms, limit. Takes due webhook deliveries and pushes their next try `hold_ms` ahead,
# so a replica that dies mid-delivery leaves them to be tried again by another (at least once).
CLAIM_WEBHOOKS = THREAD_PRELUDE + """
local due = redis.call('ZRANGEBYSCORE', P .. 'webhooks', '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local reply = {}
for _, run_id in ipairs(due) do
  redis.call('ZADD', P .. 'webhooks', tonumber(ARGV[1]) + tonumber(ARGV[2]), run_id)
  local url = redis.call('HGET', P .. 'webhook:' .. run_id, 'url')
  if url then
    reply[#reply + 1] = run_id
    reply[#reply + 1] = url
    reply[#reply + 1] = redis.call('HINCRBY', P .. 'webhook:' .. run_id, 'attempts', 1)
  else
    redis.call('ZREM', P .. 'webhooks', run_id)
  end
end
return reply
"""
