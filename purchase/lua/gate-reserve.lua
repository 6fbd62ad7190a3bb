--[[
gate-reserve.lua: the purchase gate. One atomic call per purchase attempt: idempotency replay,
token-bucket rate limits, then for every item availability (includes/gate-available.lua) and the
per-customer limit; only when every item passes are units taken (all items or none) and the hold
and idempotency records written.

Every key is in one slot, the slot of the purchase's first SKU (lib/contracts/redis-keys.ts):
KEYS[1] <prefix>:{<slot tag>}:idem:<key>      string  idempotency record (JSON)
KEYS[2] <prefix>:{<slot tag>}:hold:<holdId>   hash    the hold: state, customer, idem, items (JSON)
KEYS[3] <prefix>:{<slot tag>}:gate:unsettled  zset    holdId -> settle deadline (ms): the reaper's index
KEYS[4] <prefix>:rl:c:<customerId>     hash    token bucket per customer  } on a cluster these live in other
KEYS[5] <prefix>:rl:a:<address>        hash    token bucket per address   } slots: the adapter takes the tokens
                                               first and passes KEYS[2] here with no-limit buckets
then per item i (4 keys, all with the SKU's hash tag):
KEYS[6+4(i-1)]   <prefix>:{sku}              view summary (available, version)
KEYS[7+4(i-1)]   <prefix>:{sku}:gate         hash inflight, unreflected
KEYS[8+4(i-1)]   <prefix>:{sku}:gate:holds   hash holdId -> qty of holds still inflight
KEYS[9+4(i-1)]   <prefix>:{sku}:gate:cust    hash customerId -> units bought (limit)
KEYS[#KEYS] (last)  <prefix>:{<slot tag>}:epoch   set once the slot was rebuilt from Postgres (stream-processors/epoch.ts)
ARGV[1] JSON { now (ms), holdId, hash, customer, settleDeadline (ms), idemTtl (s), custTtl (s),
               maxPerCustomer (0 = none), rateCustomer = { capacity, perSec },
               rateAddress = { capacity, perSec } (perSec 0 = no limit),
               items = [ [sku, qty], ... ] in the order of the per-item KEYS,
               channel (optional) = the sales channel sold on: its figure instead of the SKU's (docs/channels.md),
               part (optional) = true: one more slot of a purchase whose SKUs span slots — only
               the items' checks and terms; KEYS[1..5] are unused keys of that slot }

Returns (codes in includes/codes.lua; i is the item's position in `items`, from 1)
  { REBUILDING }                 Redis lost its data and is not rebuilt yet: decide nothing
  { REPLAY, <idempotency record JSON> }
  { LIMITED_CUSTOMER | LIMITED_ADDRESS, retryAfterMs }
  { UNKNOWN_SKU, i }
  { SOLD_OUT, i, available }
  { CUSTOMER_LIMIT, i, alreadyBought }
  { CHANNEL_PENDING, i }         the SKU has no figure for the channel yet (a channel just created)
  { OK }
]]
--- @include "includes/codes"
--- @include "includes/gate-available"
--- @include "includes/token-bucket"

-- Redis without its epoch lost its data (or was never built): every figure below may be missing.
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return { CODE.REBUILDING } end

local a = cjson.decode(ARGV[1])
local now, holdId, customer, maxPerCustomer = a.now, a.holdId, a.customer, a.maxPerCustomer

local part = a.part == true
if not part then
  local idem = redis.call('GET', KEYS[1])
  if idem then return { CODE.REPLAY, idem } end
end

local wait = takeToken(KEYS[4], a.rateCustomer, now)
if wait > 0 then return { CODE.LIMITED_CUSTOMER, wait } end
wait = takeToken(KEYS[5], a.rateAddress, now)
if wait > 0 then return { CODE.LIMITED_ADDRESS, wait } end

-- Check every item before taking anything: all or none.
for i, item in ipairs(a.items) do
  local qty = item[2]
  local k = 5 + 4 * (i - 1)
  local available, known, pending = gateAvailable(KEYS[k + 1], KEYS[k + 2], a.channel)
  if not known then return { CODE.UNKNOWN_SKU, i } end
  if pending then return { CODE.CHANNEL_PENDING, i } end
  if available < qty then return { CODE.SOLD_OUT, i, math.max(0, available) } end
  if maxPerCustomer > 0 then
    local bought = tonumber(redis.call('HGET', KEYS[k + 4], customer)) or 0
    if bought + qty > maxPerCustomer then return { CODE.CUSTOMER_LIMIT, i, bought } end
  end
end

for i, item in ipairs(a.items) do
  local qty = item[2]
  local k = 5 + 4 * (i - 1)
  redis.call('HINCRBY', KEYS[k + 2], 'inflight', qty)
  redis.call('HSET', KEYS[k + 3], holdId, qty)
  if maxPerCustomer > 0 then
    redis.call('HINCRBY', KEYS[k + 4], customer, qty)
    redis.call('EXPIRE', KEYS[k + 4], a.custTtl)
  end
end
if part then return { CODE.OK } end
redis.call('HSET', KEYS[2], 'state', 'inflight', 'customer', customer, 'idem', KEYS[1],
  'items', cjson.encode(a.allItems or a.items), 'at', now)
redis.call('ZADD', KEYS[3], a.settleDeadline, holdId)
redis.call('SET', KEYS[1], cjson.encode({ h = a.hash, s = 'pending', o = holdId }), 'EX', a.idemTtl)
return { CODE.OK }
