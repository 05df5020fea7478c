-- ARGV: thread_id, fields_json, ts, if_exists ('raise'|'do_nothing')
local key = thread_key(ARGV[1])
if redis.call('EXISTS', key) == 1 then
  if ARGV[4] == 'do_nothing' then return 'exists' end
  return 'conflict'
end
local seq = redis.call('INCR', K.seq)
set_fields(key, ARGV[2])
redis.call('HSET', key, 'seq', seq, 'created_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('ZADD', K.threads, seq, ARGV[1])
return 'created'
