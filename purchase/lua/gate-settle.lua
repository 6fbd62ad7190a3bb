--[[
gate-settle.lua: a hold's write-back committed. Moves its units from `inflight` to `unreflected`
(or nowhere, when the view already includes the write-back), records the outcome for replays.
Idempotent: only a hold still in state `inflight` is settled (the reaper and the gateway may race).

KEYS[1] <prefix>:{<slot tag>}:idem:<key> (may be a key that does not exist: the hold had no record)
KEYS[2] <prefix>:{<slot tag>}:hold:<holdId>
KEYS[3] <prefix>:{<slot tag>}:gate:unsettled   (the slot of the purchase's first SKU)
then per item i: <prefix>:{sku}, <prefix>:{sku}:gate, <prefix>:{sku}:gate:holds, <prefix>:{sku}:gate:pending
ARGV[1] JSON { holdId, idemTtl (s), holdTtl (s), response (the 201 body stored for replays; '' = none),
               items = [ [sku, qty, version], ... ] (version: the SKU's version right after the write-back),
               part (optional) = true: the items of another slot (a purchase spanning slots); only
               their terms, each guarded by its entry in gate:holds; KEYS[1..3] unused keys of that slot }
Returns 1 when settled now, 0 when the hold was not inflight.
]]
--- @include "includes/pending-entry"

local a = cjson.decode(ARGV[1])
local holdId = a.holdId
local part = a.part == true
if not part and redis.call('HGET', KEYS[2], 'state') ~= 'inflight' then return 0 end
for i, item in ipairs(a.items) do
  local qty, version = item[2], item[3]
  local k = 3 + 4 * (i - 1)
  if redis.call('HDEL', KEYS[k + 3], holdId) == 1 then
    redis.call('HINCRBY', KEYS[k + 2], 'inflight', -qty)
    local viewVersion = tonumber(redis.call('HGET', KEYS[k + 1], 'version')) or 0
    if viewVersion < version then
      redis.call('HINCRBY', KEYS[k + 2], 'unreflected', qty)
      redis.call('ZADD', KEYS[k + 4], version, pendingEntry(holdId, qty))
    end
  end
end
if part then return 1 end
redis.call('HSET', KEYS[2], 'state', 'written')
redis.call('EXPIRE', KEYS[2], a.holdTtl)
redis.call('ZREM', KEYS[3], holdId)
if a.response ~= '' then
  local idem = redis.call('GET', KEYS[1])
  if idem then
    local rec = cjson.decode(idem)
    if rec.o == holdId then
      rec.s = 'done'
      rec.r = a.response
      redis.call('SET', KEYS[1], cjson.encode(rec), 'EX', a.idemTtl)
    end
  end
end
return 1
