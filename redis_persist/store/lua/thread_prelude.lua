-- Shared by the thread scripts, after prelude.lua. Their KEYS: the shared keys, the thread's block
-- (THREAD_AT), then what store/keys.py for_<script> adds. Python reads which run holds the thread
-- (`active_run`) to name its keys; the script checks that still holds (`holds`) and answers 'retry'
-- otherwise, so no script picks a key from what it reads.
local THREAD_AT = SHARED_SIZE + 1
local AFTER_THREAD = THREAD_AT + #THREAD_BLOCK
local function holds(th, expected_active)
  return (redis.call('HGET', th.thread, 'active_run') or '') == expected_active
end
-- Whether the thread's active run (task block `a`, already checked by holds()) still holds the thread.
local function active_busy(a, busy_csv)
  if a.id == '' then return false, '' end
  local st = redis.call('HGET', a.task, 'status')
  return (st and listed(busy_csv, st)) or false, a.id
end
-- A run taking the thread after a rollback starts from before the rolled-back run's checkpoints.
local function take_thread(th, r)
  redis.call('HSET', th.thread, 'active_run', r.id)
  local rolled_back = redis.call('HGET', th.thread, 'rollback_of')
  if rolled_back then
    redis.call('HSET', r.task, 'rollback_of', rolled_back)
    redis.call('HDEL', th.thread, 'rollback_of')
  end
end
