-- ARGV: lease id, token. Deletes a lease only if it is still the caller's.
if redis.call('GET', lease_key(ARGV[1])) == ARGV[2] then redis.call('DEL', lease_key(ARGV[1])) return 1 end
return 0
