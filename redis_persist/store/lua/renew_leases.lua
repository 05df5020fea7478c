-- ARGV: lease_ttl_ms, then task_id, token pairs. Per lease: 1 still held (renewed), 2 released because
-- the task left running under this very lease (completed, failed, paused, waiting_input, cancelled),
-- 0 lost (expired, taken over, or re-queued as an orphan). Only PEXPIRE writes: it works under OOM.
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
