--[[
channels-2.lua: recomputes one SKU's sales-channel figures from its rows, for a new channel
configuration (the rows did not change, so apply-rows-4.lua is not called). Same rule and same
fields as apply-rows-4.lua's channel step (includes/channel-availability.lua); a configuration
older than the one the figures were computed with writes nothing.

KEYS[1]  <prefix>:{<sku>}:rows   KEYS[2]  <prefix>:{<sku>}   (one slot)
ARGV[1]  the channels' terms for this SKU (encodeChannelTerms in lib/contracts/channels.ts)

Returns { written (1, or 0 when the view holds a newer configuration), loc1, row1, ... } (the
SKU's rows, to publish its new figures); { 1 } and no rows when the SKU has no view.
]]
--- @include "includes/channel-availability"
local function fields(text)
  local f = {}
  for x in string.gmatch(text, '([^|]+)') do f[#f + 1] = tonumber(x) end
  return f
end

local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return { 1 } end
local written = writeChannels(KEYS[2], all, fields, cjson.decode(ARGV[1]))
local out = { written }
for i = 1, #all do out[#out + 1] = all[i] end
return out
