--[[
gate-uncount.lua: a cancelled or expired order gives its units of one SKU back to the customer's
limit count, once. The release is committed in Postgres with the transition
(customer_limit_releases, migration 0012) and may be carried out more than once (right after the
commit, and by the expiry worker if the first attempt's outcome is unknown): the marker makes the
second time a no-op. Every key carries the SKU's hash tag (one slot).

KEYS[1] <prefix>:{sku}:gate:cust                     hash customerId -> units bought
KEYS[2] <prefix>:{sku}:gate:released:<orderId>       string, the marker (kept markerTtl seconds)
ARGV: customerId, qty, markerTtl(s)
Returns 1 when lowered now, 0 when this order's release was already carried out.
]]
local customer, qty, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ttl) then return 0 end
local left = redis.call('HINCRBY', KEYS[1], customer, -qty)
if left <= 0 then redis.call('HDEL', KEYS[1], customer) end
return 1
