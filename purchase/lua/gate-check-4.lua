--[[
gate-check-4.lua: reconciliation of one SKU's gate terms against their own records. `inflight`
must equal the sum of the SKU's inflight holds; `unreflected` the sum of pending write-backs the
view has not reached; pending entries at or below the view's version are due (the apply script
pops them; a repair pops any left over).

KEYS[1] <prefix>:{sku}  KEYS[2] <prefix>:{sku}:gate  KEYS[3] <prefix>:{sku}:gate:holds
KEYS[4] <prefix>:{sku}:gate:pending
ARGV[1] repair: 1 writes the expected values
Returns { inflight, expectedInflight, unreflected, expectedUnreflected, duePending }
]]
--- @include "includes/pending-entry"

local version = tonumber(redis.call('HGET', KEYS[1], 'version')) or 0
local gate = redis.call('HMGET', KEYS[2], 'inflight', 'unreflected')
local inflight, unreflected = tonumber(gate[1]) or 0, tonumber(gate[2]) or 0
local expectedInflight = 0
local holds = redis.call('HVALS', KEYS[3])
for i = 1, #holds do expectedInflight = expectedInflight + tonumber(holds[i]) end
local expectedUnreflected, due = 0, 0
local pending = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
for i = 1, #pending, 2 do
  local qty = pendingQty(pending[i])
  if tonumber(pending[i + 1]) > version then
    expectedUnreflected = expectedUnreflected + qty
  else
    due = due + 1
  end
end
if ARGV[1] == '1' then
  if due > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', version) end
  if inflight ~= expectedInflight or unreflected ~= expectedUnreflected then
    redis.call('HSET', KEYS[2], 'inflight', expectedInflight, 'unreflected', expectedUnreflected)
  end
end
return { inflight, expectedInflight, unreflected, expectedUnreflected, due }
