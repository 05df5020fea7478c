-- ARGV: now_ms, hold_ms, limit. Takes due webhook deliveries and pushes their next try `hold_ms` ahead,
-- so a replica that dies mid-delivery leaves them to be tried again by another (at least once).
local due = redis.call('ZRANGEBYSCORE', K.webhooks, '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local reply = {}
for _, run_id in ipairs(due) do
  redis.call('ZADD', K.webhooks, tonumber(ARGV[1]) + tonumber(ARGV[2]), run_id)
  local url = redis.call('HGET', K.webhook .. run_id, 'url')
  if url then
    reply[#reply + 1] = run_id
    reply[#reply + 1] = url
    reply[#reply + 1] = redis.call('HINCRBY', K.webhook .. run_id, 'attempts', 1)
  else
    redis.call('ZREM', K.webhooks, run_id)
  end
end
return reply
