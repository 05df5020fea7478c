-- KEYS: keys.for_fair_read(tenants): (work stream, running set) per tenant, in turn order.
-- ARGV: group, consumer, count, tenant_cap (0 = none).
-- Takes one message per tenant per round until `count` are taken or no tenant has any (or all are at
-- their cap). Returns {'taken', stream, message_id, task_id, ...} or, with nothing to take,
-- {'idle', stream, last_entry_id, ...} for the caller to wait from.
local group, consumer = ARGV[1], ARGV[2]
local want, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local streams, room = {}, {}
for n = 1, #KEYS / 2 do
  streams[n] = KEYS[2 * n - 1]
  room[n] = want
  if cap > 0 then room[n] = cap - redis.call('ZCARD', KEYS[2 * n]) end
end
-- XREADGROUP's reply is {{stream, {{id, {field, value}}}}}; fakeredis drops the outer list.
local function first_entry(reply)
  if not reply or not reply[1] then return nil end
  local entries = type(reply[1]) == 'string' and reply[2] or reply[1][2]
  return entries and entries[1]
end
local out = {'taken'}
local taken = 0
local progress = true
while taken < want and progress do
  progress = false
  for n = 1, #streams do
    if taken < want and room[n] > 0 then
      local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', streams[n], '>')
      local entry = first_entry(reply)
      if entry then
        out[#out + 1] = streams[n]
        out[#out + 1] = entry[1]
        out[#out + 1] = entry[2][2]
        taken = taken + 1
        room[n] = room[n] - 1
        progress = true
      else
        room[n] = 0
      end
    end
  end
end
if taken > 0 then return out end
local idle = {'idle'}
for n = 1, #streams do
  local last = redis.call('XREVRANGE', streams[n], '+', '-', 'COUNT', 1)
  idle[#idle + 1] = streams[n]
  idle[#idle + 1] = (last[1] and last[1][1]) or '0-0'
end
return idle
