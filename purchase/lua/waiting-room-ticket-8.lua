--[[
waiting-room-ticket-8.lua: a numbered ticket for a purchase of a hot SKU (docs/purchase-path.md,
"Waiting room"). The caller's rate limits are taken first, before any ticket is drawn: a client
over its budget gets LIMITED_* and nothing is stored for it. The first `cap` tickets proceed to
the gate at once, where cap starts at ceil(gate available x factor) when the first ticket is drawn
and grows by one with every waitlisted ticket admitted later. Past the cap: sold out at once when
the gate has nothing left (no ticket is drawn and nothing is stored: a retry is evaluated afresh),
otherwise the request waits in the SKU's queue until a worker admits it or declares it sold out.

KEYS[1] <prefix>:{sku}:wr          hash  issued, cap
KEYS[2] <prefix>:{sku}:wr:queue    list  waitlisted requests (JSON, with their ticket), in ticket order
KEYS[3] <prefix>:{sku}:wr:keys     hash  <customer>:<Idempotency-Key> -> ticket|hash (a retry keeps its ticket)
KEYS[4] <prefix>:{sku}             view summary
KEYS[5] <prefix>:{sku}:gate        gate terms
KEYS[6] <prefix>:{sku}:wr:out      zset  admitted tickets not yet decided -> deadline (ms); an entry
                                         whose gateway died expires at its deadline
KEYS[7] <prefix>:rl:c:<customerId> hash  token bucket per customer (the gate's, gate-reserve.lua)
KEYS[8] <prefix>:rl:a:<address>    hash  token bucket per client address
ARGV[1] JSON { factor, scopedKey (the Idempotency-Key scoped by customer), request (queued with
               its `ticket` when waitlisted), ttl (s), hash, now (ms), deadline (ms),
               rateCustomer = { capacity, perSec }, rateAddress = { capacity, perSec } }
Returns (codes in includes/codes.lua)
  { ADMIT, ticket } | { WAITLISTED, ticket, position } | { SOLD_OUT }
  | { KNOWN, ticket, hash }  (the key already drew a ticket)
  | { LIMITED_CUSTOMER | LIMITED_ADDRESS, retryAfterMs }
  | { UNKNOWN_SKU }  (no view for the SKU)
]]
--- @include "includes/codes"
--- @include "includes/gate-available"
--- @include "includes/token-bucket"

local a = cjson.decode(ARGV[1])
local known = redis.call('HGET', KEYS[3], a.scopedKey)
if known then
  local t, h = string.match(known, '^(%d+)|(.*)$')
  return { CODE.KNOWN, tonumber(t), h }
end

local wait = takeToken(KEYS[7], a.rateCustomer, a.now)
if wait > 0 then return { CODE.LIMITED_CUSTOMER, wait } end
wait = takeToken(KEYS[8], a.rateAddress, a.now)
if wait > 0 then return { CODE.LIMITED_ADDRESS, wait } end

local available, skuKnown = gateAvailable(KEYS[4], KEYS[5])
if not skuKnown then return { CODE.UNKNOWN_SKU } end
local issued = tonumber(redis.call('HGET', KEYS[1], 'issued')) or 0
local cap = tonumber(redis.call('HGET', KEYS[1], 'cap'))
if not cap then
  cap = math.ceil(math.max(0, available) * a.factor)
  redis.call('HSET', KEYS[1], 'cap', cap)
end
if issued + 1 > cap and available <= 0 then return { CODE.SOLD_OUT } end
local ticket = redis.call('HINCRBY', KEYS[1], 'issued', 1)
redis.call('HSET', KEYS[3], a.scopedKey, ticket .. '|' .. a.hash)
redis.call('EXPIRE', KEYS[3], a.ttl)
if ticket <= cap then
  redis.call('ZADD', KEYS[6], a.deadline, ticket)
  return { CODE.ADMIT, ticket }
end
local request = a.request
request.ticket = ticket
redis.call('RPUSH', KEYS[2], cjson.encode(request))
return { CODE.WAITLISTED, ticket, ticket - cap }
