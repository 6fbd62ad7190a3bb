-- A pending write-back in <prefix>:{sku}:gate:pending: the member "holdId|qty", scored by the
-- SKU version the write-back committed at. Written by gate-settle.lua, read by gate-check-4.lua
-- and stream-processors/lua/apply-rows-4.lua.
local function pendingEntry(holdId, qty)
  return holdId .. '|' .. qty
end
-- The units of a pending entry (0 for a malformed one).
local function pendingQty(entry)
  return tonumber(string.match(entry, '|(%d+)$')) or 0
end
