--[[
gate-release.lua: a hold's write-back did not commit and never will (it failed, or the reaper's
`abandoned` order won the id). Gives its units back to the gate and forgets the idempotency
record, so a retry with the same key is evaluated afresh. Idempotent like gate-settle.lua.

KEYS[1] <prefix>:{<slot tag>}:idem:<key>, KEYS[2] <prefix>:{<slot tag>}:hold:<holdId>,
KEYS[3] <prefix>:{<slot tag>}:gate:unsettled   (the slot of the purchase's first SKU)
then per item i: <prefix>:{sku}:gate, <prefix>:{sku}:gate:holds, <prefix>:{sku}:gate:cust
ARGV[1] JSON { holdId, customer, items = [ [sku, qty], ... ],
               part (optional) = true: the items of another slot (see gate-settle.lua) }
Returns 1 when released now, 0 when the hold was not inflight.
]]
local a = cjson.decode(ARGV[1])
local holdId, customer = a.holdId, a.customer
local part = a.part == true
if not part and redis.call('HGET', KEYS[2], 'state') ~= 'inflight' then return 0 end
for i, item in ipairs(a.items) do
  local qty = item[2]
  local k = 3 + 3 * (i - 1)
  if redis.call('HDEL', KEYS[k + 2], holdId) == 1 then
    redis.call('HINCRBY', KEYS[k + 1], 'inflight', -qty)
    local left = redis.call('HINCRBY', KEYS[k + 3], customer, -qty)
    if left <= 0 then redis.call('HDEL', KEYS[k + 3], customer) end
  end
end
if part then return 1 end
local idem = redis.call('GET', KEYS[1])
if idem and cjson.decode(idem).o == holdId then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], holdId)
return 1
