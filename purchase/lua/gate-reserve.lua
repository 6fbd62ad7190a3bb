--[[
gate-reserve.lua: the purchase gate. One atomic call per purchase attempt: idempotency replay,
token-bucket rate limits, then for every item availability and the per-customer limit; only when
every item passes are units taken (all items or none) and the hold and idempotency records written.

Gate availability of a SKU (docs/purchase-path.md):
    available = view.available - inflight - unreflected
view.available is the SKU's committed availability folded from CDC (apply-rows-4.lua); inflight
counts units of accepted holds whose write-back has not committed yet; unreflected counts units
written back at a SKU version the view has not reached yet.

KEYS[1] <prefix>:idem:<key>            string  idempotency record (JSON)
KEYS[2] <prefix>:hold:<holdId>         hash    the hold: state, customer, idem, items (JSON)
KEYS[3] <prefix>:gate:unsettled        zset    holdId -> settle deadline (ms): the reaper's index
KEYS[4] <prefix>:rl:c:<customerId>     hash    token bucket per customer
KEYS[5] <prefix>:rl:a:<address>        hash    token bucket per client address
then per item i (4 keys, all with the SKU's hash tag):
KEYS[6+4(i-1)]   <prefix>:{sku}              view summary (available, version)
KEYS[7+4(i-1)]   <prefix>:{sku}:gate         hash inflight, unreflected
KEYS[8+4(i-1)]   <prefix>:{sku}:gate:holds   hash holdId -> qty of holds still inflight
KEYS[9+4(i-1)]   <prefix>:{sku}:gate:cust    hash customerId -> units bought (limit)
KEYS[#KEYS] (last)  <prefix>:epoch    set once Redis was rebuilt from Postgres (stream-processors/epoch.ts)
ARGV: now(ms), holdId, bodyHash, customerId, settleDeadline(ms), idemTtl(s),
      custCapacity, custPerSec, addrCapacity, addrPerSec (0 per sec = no limit),
      maxPerCustomer, custTtl(s), n, then per item: sku, qty

Returns one of
  { 'rebuilding' }                      Redis lost its data and is not rebuilt yet: decide nothing
  { 'replay', <idempotency record JSON> }
  { 'limited', 'customer'|'address', retryAfterMs }
  { 'unknown', sku }
  { 'sold_out', sku, available }
  { 'limit', sku, alreadyBought }
  { 'ok' }
]]
-- Redis without its epoch lost its data (or was never built): every figure below may be missing.
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return { 'rebuilding' } end

local now = tonumber(ARGV[1])
local holdId, bodyHash, customer = ARGV[2], ARGV[3], ARGV[4]
local settleDeadline, idemTtl = tonumber(ARGV[5]), tonumber(ARGV[6])
local maxPerCustomer, custTtl, n = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])

local idem = redis.call('GET', KEYS[1])
if idem then return { 'replay', idem } end

-- Token bucket: refills `perSec` tokens per second up to `capacity`; one token per attempt.
local function take(key, capacity, perSec)
  if perSec <= 0 then return 0 end
  local b = redis.call('HMGET', key, 't', 'ts')
  local tokens, ts = tonumber(b[1]), tonumber(b[2])
  if not tokens then tokens, ts = capacity, now end
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * perSec / 1000)
  if tokens < 1 then return math.ceil((1 - tokens) * 1000 / perSec) end
  redis.call('HSET', key, 't', tostring(tokens - 1), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(capacity / perSec * 1000) + 1000)
  return 0
end
local wait = take(KEYS[4], tonumber(ARGV[7]), tonumber(ARGV[8]))
if wait > 0 then return { 'limited', 'customer', wait } end
wait = take(KEYS[5], tonumber(ARGV[9]), tonumber(ARGV[10]))
if wait > 0 then return { 'limited', 'address', wait } end

-- Check every item before taking anything: all or none.
for i = 1, n do
  local sku, qty = ARGV[12 + 2 * i], tonumber(ARGV[13 + 2 * i])
  local k = 5 + 4 * (i - 1)
  local view = redis.call('HMGET', KEYS[k + 1], 'available', 'deleted')
  if not view[1] or view[2] == '1' then return { 'unknown', sku } end
  local gate = redis.call('HMGET', KEYS[k + 2], 'inflight', 'unreflected')
  local available = tonumber(view[1]) - (tonumber(gate[1]) or 0) - (tonumber(gate[2]) or 0)
  if available < qty then return { 'sold_out', sku, math.max(0, available) } end
  if maxPerCustomer > 0 then
    local bought = tonumber(redis.call('HGET', KEYS[k + 4], customer)) or 0
    if bought + qty > maxPerCustomer then return { 'limit', sku, bought } end
  end
end

local items = {}
for i = 1, n do
  local sku, qty = ARGV[12 + 2 * i], tonumber(ARGV[13 + 2 * i])
  local k = 5 + 4 * (i - 1)
  redis.call('HINCRBY', KEYS[k + 2], 'inflight', qty)
  redis.call('HSET', KEYS[k + 3], holdId, qty)
  if maxPerCustomer > 0 then
    redis.call('HINCRBY', KEYS[k + 4], customer, qty)
    redis.call('EXPIRE', KEYS[k + 4], custTtl)
  end
  items[#items + 1] = { sku, qty }
end
redis.call('HSET', KEYS[2], 'state', 'inflight', 'customer', customer, 'idem', KEYS[1],
  'items', cjson.encode(items), 'at', now)
redis.call('ZADD', KEYS[3], settleDeadline, holdId)
redis.call('SET', KEYS[1], cjson.encode({ h = bodyHash, s = 'pending', o = holdId }), 'EX', idemTtl)
return { 'ok' }
