-- KEYS: keys.for_task(task_id): shared keys, the task's block.
-- ARGV: task_id, final_checkpoint_json ('' = keep the one stored: the checkpoints are gone already).
-- The first step of compacting a finished task (engine/compaction.py): keep what its history shows of its
-- final checkpoint in the record, before its checkpoints are deleted, and shrink its events stream. Only a task in a final status, of its
-- own (not a run on a LangGraph thread): no run can write to it any more, so no lease is needed.
-- Returns ok | missing | not_final (the last two also drop it from the compaction queue).
local t = task_at(SHARED_SIZE + 1, ARGV[1])
local status = redis.call('HGET', t.task, 'status')
local function is_final(s)
  for _, target in pairs(MOVES[s] or {}) do
    if target ~= 'deleted' then return false end
  end
  return true
end
if not status then
  redis.call('ZREM', SHARED.compact, t.id)
  return 'missing'
end
if not is_final(status) or redis.call('HEXISTS', t.task, 'thread_id') == 1 then
  redis.call('ZREM', SHARED.compact, t.id)
  return 'not_final'
end
if ARGV[2] ~= '' then redis.call('HSET', t.task, 'final_checkpoint', ARGV[2]) end
-- A stream's newest node keeps the 4 KB Redis allocates ahead for entries to come; a finished task's
-- events get no more, so its stream is rewritten exactly sized (same entries, ids and last id).
-- pcall: an ACL user without DUMP/RESTORE (@dangerous) keeps the stream as it is; RESTORE replaces it whole or not at all.
local dumped = redis.pcall('DUMP', t.events)
if type(dumped) == 'string' then
  local ttl = redis.call('PTTL', t.events)
  redis.pcall('RESTORE', t.events, ttl > 0 and ttl or 0, dumped, 'REPLACE')
end
-- Only a task that can still run uses these (claim.lua, renew_leases.lua, the runner: initial_state is its
-- first input; no answer shows it, and an idempotent create compares request_hash).
redis.call('HDEL', t.task, 'fence', 'current_node', 'initial_state')
return 'ok'
