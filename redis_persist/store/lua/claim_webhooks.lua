-- KEYS: keys.for_claim_webhooks(run_ids): the due set, then the delivery hash of each run Python saw due.
-- ARGV: now_ms, hold_ms, then those run ids. Takes the deliveries still due and pushes their next try
-- `hold_ms` ahead, so a replica that dies mid-delivery leaves them to be tried again by another (at
-- least once). One another replica claimed since Python read the due set is no longer due: skipped.
local due_set, now = KEYS[1], tonumber(ARGV[1])
local reply = {}
for n = 2, #KEYS do
  local run_id, hook = ARGV[n + 1], KEYS[n]
  local score = redis.call('ZSCORE', due_set, run_id)
  if score and tonumber(score) <= now then
    redis.call('ZADD', due_set, now + tonumber(ARGV[2]), run_id)
    local url = redis.call('HGET', hook, 'url')
    if url then
      reply[#reply + 1] = run_id
      reply[#reply + 1] = url
      reply[#reply + 1] = redis.call('HINCRBY', hook, 'attempts', 1)
    else
      redis.call('ZREM', due_set, run_id)
    end
  end
end
return reply
