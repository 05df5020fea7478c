-- Shared by the thread scripts, after prelude.lua.
local function thread_key(id) return K.thread .. id end
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
