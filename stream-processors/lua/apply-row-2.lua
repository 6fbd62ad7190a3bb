--[[
apply-row-2.lua: applies one stock row change to a SKU's Redis view, atomically and in version
order. The Lua twin of stream-processors/domain/fold.ts (foldRow + summarize); an integration
test runs both on the same sequences and compares.

KEYS[1]  <prefix>:{<sku>}:rows  hash  locationId -> "onHand|reserved|safetyStock|version|deleted|commitTs"
KEYS[2]  <prefix>:{<sku>}       hash  summary: onHand reserved safetyStock available version deleted commitTs
         (both keys share the hash tag {<sku>}: one Redis Cluster slot)
ARGV[1]  locationId
ARGV[2]  deleted: 1 for a row deletion, else 0
ARGV[3]  onHand      ARGV[4] reserved      ARGV[5] safetyStock
ARGV[6]  version (the row's; for a deletion, the version of the removed row)
ARGV[7]  commitTs (ms since epoch)
ARGV[8]  force: 1 also overwrites at equal rank (reconcile repair), else 0

A change's rank is version * 2 + deleted. Higher than the stored row's: applied. Equal:
duplicate, nothing written. Lower: stale, nothing written.

Returns { status, prevAvailable, published, loc1, row1, loc2, row2, ... }
  status         1 applied, 0 duplicate, -1 stale
  prevAvailable  the summary's available before this call, -1 when the SKU had no view
  published      the highest SKU version whose effects were published (mark-published-1.lua), -1 if none
  loc/row pairs  the SKU's rows after this call; none for a stale change
]]
local function fields(text)
  local f = {}
  for x in string.gmatch(text, '([^|]+)') do f[#f + 1] = tonumber(x) end
  return f
end

local loc = ARGV[1]
local del = tonumber(ARGV[2])
local inRank = tonumber(ARGV[6]) * 2 + del

-- One read of each hash; everything else is computed here (this script runs once per change).
local all = redis.call('HGETALL', KEYS[1])
local meta = redis.call('HMGET', KEYS[2], 'available', 'published')
local prevAvailable = -1
if meta[1] then prevAvailable = tonumber(meta[1]) end
local published = -1
if meta[2] then published = tonumber(meta[2]) end

local at = nil
for i = 1, #all, 2 do
  if all[i] == loc then at = i + 1 end
end

local status = 1
if at then
  local f = fields(all[at])
  local curRank = f[4] * 2 + f[5]
  if inRank < curRank then
    status = -1
  elseif inRank == curRank and ARGV[8] ~= '1' then
    status = 0
  end
end

-- A stale change is dropped: nothing to publish, so no rows are returned.
if status == -1 then return { status, prevAvailable, published } end

if status == 1 then
  local row
  if del == 1 then
    row = '0|0|0|' .. ARGV[6] .. '|1|' .. ARGV[7]
  else
    row = ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|0|' .. ARGV[7]
  end
  redis.call('HSET', KEYS[1], loc, row)
  if at then
    all[at] = row
  else
    all[#all + 1] = loc
    all[#all + 1] = row
  end

  local onHand, reserved, safety, available = 0, 0, 0, 0
  local maxVersion, topRank, deleted, commitTs = 0, -1, 0, 0
  for i = 1, #all, 2 do
    local f = fields(all[i + 1])
    local rk = f[4] * 2 + f[5]
    if rk > topRank then
      topRank = rk
      deleted = f[5]
    end
    if f[4] > maxVersion then maxVersion = f[4] end
    if f[6] > commitTs then commitTs = f[6] end
    if f[5] == 0 then
      onHand = onHand + f[1]
      reserved = reserved + f[2]
      safety = safety + f[3]
      local a = f[1] - f[2] - f[3]
      if a > 0 then available = available + a end
    end
  end
  redis.call('HSET', KEYS[2],
    'onHand', onHand, 'reserved', reserved, 'safetyStock', safety, 'available', available,
    'version', string.format('%d', maxVersion), 'deleted', deleted,
    'commitTs', string.format('%d', commitTs))
end

local out = { status, prevAvailable, published }
for i = 1, #all do out[#out + 1] = all[i] end
return out
