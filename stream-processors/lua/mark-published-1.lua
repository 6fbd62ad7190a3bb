--[[
mark-published-1.lua: records that the effects (deltas, levels, feed entry) of a SKU's state up
to a version were published, so that a later duplicate of an already-published change is not
re-emitted, while a duplicate whose effects may have been lost (a crash between apply and
publish, or a change applied by a rebuild) still is.

KEYS[1]  <prefix>:{<sku>}   the SKU summary hash
ARGV[1]  version
Returns  the stored published version after the call (never lowered)
]]
local cur = tonumber(redis.call('HGET', KEYS[1], 'published') or '-1')
local v = tonumber(ARGV[1])
if v > cur then
  redis.call('HSET', KEYS[1], 'published', ARGV[1])
  return v
end
return cur
