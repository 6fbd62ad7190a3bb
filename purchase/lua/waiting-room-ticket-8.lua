--[[
waiting-room-ticket-8.lua: a numbered ticket for a purchase of a hot SKU (docs/purchase-path.md,
"Waiting room"). The caller's rate limits are taken first, before any ticket is drawn: a client
over its budget gets 'limited' and nothing is stored for it. The first `cap` tickets proceed to
the gate at once, where cap starts at ceil(gate available x factor) when the first ticket is drawn
and grows by one with every waitlisted ticket admitted later. Past the cap: sold out at once when
the gate has nothing left (no ticket is drawn and nothing is stored: a retry is evaluated afresh),
otherwise the request waits in the SKU's queue until a worker admits it or declares it sold out.

KEYS[1] <prefix>:{sku}:wr          hash  issued, cap
KEYS[2] <prefix>:{sku}:wr:queue    list  waitlisted requests (JSON), in ticket order
KEYS[3] <prefix>:{sku}:wr:keys     hash  <customer>:<Idempotency-Key> -> ticket|hash (a retry keeps its ticket)
KEYS[4] <prefix>:{sku}             view summary
KEYS[5] <prefix>:{sku}:gate        gate terms
KEYS[6] <prefix>:{sku}:wr:out      zset  admitted tickets not yet decided -> deadline (ms); an entry
                                         whose gateway died expires at its deadline
KEYS[7] <prefix>:rl:c:<customerId> hash  token bucket per customer (the gate's, gate-reserve.lua)
KEYS[8] <prefix>:rl:a:<address>    hash  token bucket per client address
ARGV: factor, scoped Idempotency-Key, request JSON (queued when waitlisted; "{ticket}" is replaced),
      ttl(s), request hash, now (ms), deadline (ms),
      custCapacity, custPerSec, addrCapacity, addrPerSec (0 per sec = no limit)
Returns { 'admit', ticket } | { 'waitlisted', ticket, position } | { 'sold_out' }
        | { 'known', ticket, hash }  (the key already drew a ticket)
        | { 'limited', 'customer'|'address', retryAfterMs }
        | { 'unknown' }  (no view for the SKU)
]]
local known = redis.call('HGET', KEYS[3], ARGV[2])
if known then
  local t, h = string.match(known, '^(%d+)|(.*)$')
  return { 'known', tonumber(t), h }
end
local now = tonumber(ARGV[6])

-- Token bucket, as in gate-reserve.lua: refills `perSec` tokens per second up to `capacity`.
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
local wait = take(KEYS[7], tonumber(ARGV[8]), tonumber(ARGV[9]))
if wait > 0 then return { 'limited', 'customer', wait } end
wait = take(KEYS[8], tonumber(ARGV[10]), tonumber(ARGV[11]))
if wait > 0 then return { 'limited', 'address', wait } end

local view = redis.call('HMGET', KEYS[4], 'available', 'deleted')
if not view[1] or view[2] == '1' then return { 'unknown' } end
local gate = redis.call('HMGET', KEYS[5], 'inflight', 'unreflected')
local available = tonumber(view[1]) - (tonumber(gate[1]) or 0) - (tonumber(gate[2]) or 0)
local issued = tonumber(redis.call('HGET', KEYS[1], 'issued')) or 0
local cap = tonumber(redis.call('HGET', KEYS[1], 'cap'))
if not cap then
  cap = math.ceil(math.max(0, available) * tonumber(ARGV[1]))
  redis.call('HSET', KEYS[1], 'cap', cap)
end
if issued + 1 > cap and available <= 0 then return { 'sold_out' } end
local ticket = redis.call('HINCRBY', KEYS[1], 'issued', 1)
redis.call('HSET', KEYS[3], ARGV[2], ticket .. '|' .. ARGV[5])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
if ticket <= cap then
  redis.call('ZADD', KEYS[6], tonumber(ARGV[7]), ticket)
  return { 'admit', ticket }
end
redis.call('RPUSH', KEYS[2], (string.gsub(ARGV[3], '"{ticket}"', tostring(ticket))))
return { 'waitlisted', ticket, ticket - cap }
