-- KEYS: keys.for_create_thread(thread_id): shared keys, the thread's block.
-- ARGV: thread_id, fields_json, ts, if_exists ('raise'|'do_nothing')
local th = thread_at(THREAD_AT)
if redis.call('EXISTS', th.thread) == 1 then
  if ARGV[4] == 'do_nothing' then return 'exists' end
  return 'conflict'
end
local seq = redis.call('INCR', SHARED.seq)
set_fields(th.thread, ARGV[2])
redis.call('HSET', th.thread, 'seq', seq, 'created_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('ZADD', th.threads, seq, ARGV[1])
return 'created'
