--[[
waiting-room-admit-5.lua: the waiting-room worker's step for one hot SKU. Admits the next
waitlisted request while the gate has units for more than the admitted requests still being
decided, or, when the gate is empty and nothing admitted is pending, declares every waitlisted
request sold out. Several gateways may run it: each step is atomic.

KEYS[1] <prefix>:{sku}:wr  KEYS[2] <prefix>:{sku}:wr:queue  KEYS[3] <prefix>:{sku}  KEYS[4] <prefix>:{sku}:gate
KEYS[5] <prefix>:{sku}:wr:out  (admitted tickets not yet decided -> deadline; expired ones are dropped)
ARGV[1] factor, ARGV[2] now (ms), ARGV[3] deadline for a ticket admitted now (ms)
Returns (codes in includes/codes.lua)
  { EMPTY } | { WAIT } | { ADMIT, request JSON } | { SOLD_OUT, request1 JSON, request2 JSON, ... }
]]
--- @include "includes/codes"
--- @include "includes/gate-available"

if redis.call('LLEN', KEYS[2]) == 0 then return { CODE.EMPTY } end
local available = gateAvailable(KEYS[3], KEYS[4])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[2]))
local outstanding = redis.call('ZCARD', KEYS[5])
if available <= 0 then
  if outstanding > 0 then return { CODE.WAIT } end
  local all = redis.call('LRANGE', KEYS[2], 0, -1)
  redis.call('DEL', KEYS[2])
  table.insert(all, 1, CODE.SOLD_OUT)
  return all
end
if outstanding >= math.ceil(available * tonumber(ARGV[1])) then return { CODE.WAIT } end
local request = redis.call('LPOP', KEYS[2])
redis.call('ZADD', KEYS[5], tonumber(ARGV[3]), cjson.decode(request).ticket)
redis.call('HINCRBY', KEYS[1], 'cap', 1)
return { CODE.ADMIT, request }
