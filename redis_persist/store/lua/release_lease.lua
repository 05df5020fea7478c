-- KEYS: keys.for_release_lease(lease_id). ARGV: token. Deletes a lease only if it is still the caller's.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
