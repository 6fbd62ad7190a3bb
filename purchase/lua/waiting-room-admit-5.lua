--[[
waiting-room-admit-5.lua: the waiting-room worker's step for one hot SKU. Admits the next
waitlisted request while the gate has units for more than the admitted requests still being
decided, or, when the gate is empty and nothing admitted is pending, declares every waitlisted
request sold out. Several gateways may run it: each step is atomic.

KEYS[1] <prefix>:{sku}:wr  KEYS[2] <prefix>:{sku}:wr:queue  KEYS[3] <prefix>:{sku}  KEYS[4] <prefix>:{sku}:gate
KEYS[5] <prefix>:{sku}:wr:out  (admitted tickets not yet decided -> deadline; expired ones are dropped)
ARGV[1] factor, ARGV[2] now (ms), ARGV[3] deadline for a ticket admitted now (ms)
Returns { 'empty' } | { 'wait' } | { 'admit', request } | { 'sold_out', request1, request2, ... }
]]
if redis.call('LLEN', KEYS[2]) == 0 then return { 'empty' } end
local view = tonumber(redis.call('HGET', KEYS[3], 'available')) or 0
local gate = redis.call('HMGET', KEYS[4], 'inflight', 'unreflected')
local available = view - (tonumber(gate[1]) or 0) - (tonumber(gate[2]) or 0)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[2]))
local outstanding = redis.call('ZCARD', KEYS[5])
if available <= 0 then
  if outstanding > 0 then return { 'wait' } end
  local all = redis.call('LRANGE', KEYS[2], 0, -1)
  redis.call('DEL', KEYS[2])
  table.insert(all, 1, 'sold_out')
  return all
end
if outstanding >= math.ceil(available * tonumber(ARGV[1])) then return { 'wait' } end
local request = redis.call('LPOP', KEYS[2])
local ticket = string.match(request, '"ticket":(%d+)')
redis.call('ZADD', KEYS[5], tonumber(ARGV[3]), ticket)
redis.call('HINCRBY', KEYS[1], 'cap', 1)
return { 'admit', request }
