--[[
waiting-room-ticket-6.lua: a numbered ticket for a purchase of a hot SKU (docs/purchase-path.md,
"Waiting room"). The first `cap` tickets proceed to the gate at once, where cap starts at
ceil(gate available x factor) when the first ticket is drawn and grows by one with every
waitlisted ticket admitted later. Past the cap: sold out at once when the gate has nothing left,
otherwise the request waits in the SKU's queue until a worker admits it or declares it sold out.

KEYS[1] <prefix>:{sku}:wr          hash  issued, cap
KEYS[2] <prefix>:{sku}:wr:queue    list  waitlisted requests (JSON), in ticket order
KEYS[3] <prefix>:{sku}:wr:keys     hash  Idempotency-Key -> ticket (a retry keeps its ticket)
KEYS[4] <prefix>:{sku}             view summary
KEYS[5] <prefix>:{sku}:gate        gate terms
KEYS[6] <prefix>:{sku}:wr:out      zset  admitted tickets not yet decided -> deadline (ms); an entry
                                         whose gateway died expires at its deadline
ARGV: factor, Idempotency-Key, request JSON (queued when waitlisted; "{ticket}" is replaced), ttl(s),
      request hash, now (ms), deadline (ms)
Returns { 'admit', ticket } | { 'waitlisted', ticket, position } | { 'sold_out', ticket }
        | { 'known', ticket, hash }  (the key already drew a ticket)
        | { 'unknown' }  (no view for the SKU)
]]
local known = redis.call('HGET', KEYS[3], ARGV[2])
if known then
  local t, h = string.match(known, '^(%d+)|(.*)$')
  return { 'known', tonumber(t), h }
end
local view = redis.call('HMGET', KEYS[4], 'available', 'deleted')
if not view[1] or view[2] == '1' then return { 'unknown' } end
local gate = redis.call('HMGET', KEYS[5], 'inflight', 'unreflected')
local available = tonumber(view[1]) - (tonumber(gate[1]) or 0) - (tonumber(gate[2]) or 0)
local ticket = redis.call('HINCRBY', KEYS[1], 'issued', 1)
redis.call('HSET', KEYS[3], ARGV[2], ticket .. '|' .. ARGV[5])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
local cap = tonumber(redis.call('HGET', KEYS[1], 'cap'))
if not cap then
  cap = math.ceil(math.max(0, available) * tonumber(ARGV[1]))
  redis.call('HSET', KEYS[1], 'cap', cap)
end
if ticket <= cap then
  redis.call('ZADD', KEYS[6], tonumber(ARGV[7]), ticket)
  return { 'admit', ticket }
end
if available <= 0 then return { 'sold_out', ticket } end
redis.call('RPUSH', KEYS[2], (string.gsub(ARGV[3], '"{ticket}"', tostring(ticket))))
return { 'waitlisted', ticket, ticket - cap }
