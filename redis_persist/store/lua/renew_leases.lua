-- KEYS: keys.for_renew_leases(task_ids): (lease, task hash) per task.
-- ARGV: lease_ttl_ms, then each task's token in the same order. Per lease: 1 still held (renewed),
-- 2 released because the task left running under this very lease (completed, failed, paused,
-- waiting_input, cancelled), 0 lost (expired, taken over, or re-queued as an orphan).
-- Only PEXPIRE writes: it works under OOM.
local held = {}
for n = 1, #KEYS / 2 do
  local lease, task, token = KEYS[2 * n - 1], KEYS[2 * n], ARGV[n + 1]
  local current = redis.call('GET', lease)
  if current == token then
    redis.call('PEXPIRE', lease, ARGV[1])
    held[#held + 1] = 1
  else
    local fields = redis.call('HMGET', task, 'status', 'fence')
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
