-- ARGV: thread_id, busy_csv, lock_token, ttl_ms. A short lease under which update_state may write.
local tkey = thread_key(ARGV[1])
if redis.call('EXISTS', tkey) == 0 then return {'missing', ''} end
local busy, active = active_busy(tkey, ARGV[2])
if busy then return {'busy', active} end
if not redis.call('SET', lease_key('thread-update:' .. ARGV[1]), ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {'busy', ''}
end
return {'ok', ''}
