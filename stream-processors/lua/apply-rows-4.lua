--[[
apply-rows-4.lua: applies changes to the rows of ONE SKU's Redis view, atomically and in
version order. The Lua twin of stream-processors/domain/fold.ts (foldRow + summarize); an
integration test runs both on the same sequences and compares. The processor calls it with one
change per call (it needs the SKU's state after each change for that change's delta); rebuild
and repair call it with all of a SKU's rows at once.

KEYS[1]  <prefix>:{<sku>}:rows  hash  locationId -> "onHand|reserved|safetyStock|version|deleted|commitTs|
                                       incoming|backordered|nextEta|policy|limit" (rows of the first six
                                       fields only, written before docs/incoming.md, read as 0|0|0|0|-1)
KEYS[2]  <prefix>:{<sku>}       hash  summary: onHand reserved safetyStock available version deleted commitTs
                                      incoming backordered nextEta backorderable (the gate sells
                                      available + backorderable; includes/backorder-allowance.lua)
KEYS[3]  <prefix>:{<sku>}:gate          hash  the purchase gate's terms (purchase/lua/gate-reserve.lua)
KEYS[4]  <prefix>:{<sku>}:gate:pending  zset  write-backs not yet in the view: "holdId|qty" -> SKU version
         (all keys share the hash tag {<sku>}: one Redis Cluster slot)
ARGV[1]  force: 1 also overwrites at equal rank (reconcile repair), else 0
ARGV[2]  n, the number of changes that follow, 4 arguments each, applied in order:
           locationId, deleted (1 for a row deletion, else 0), version (the row's; for a
           deletion, the version of the removed row), and the row as it is stored when the change
           applies (encodeRow in lib/contracts/stock-view.ts: onHand, reserved, safetyStock,
           version, deleted, commitTs (ms), incoming, backordered, nextEta (ms, 0 none), policy
           (0 none, 1 backorder, 2 preorder), limit (-1 none); a deletion's is
           0|0|0|version|1|commitTs|0|0|0|0|-1). The row comes encoded: one argument instead of
           eleven, and nothing to join here.
ARGV[3 + 4n] (optional) the sales channels' terms for this SKU (encodeChannelTerms in
         lib/contracts/channels.ts); '' or absent: no channels configured. When rows changed,
         the channels' figures are written with the summary (includes/channel-availability.lua).

Once the view's version reaches a pending write-back's version, the view includes it: the entry
is popped and its units leave the gate's `unreflected` term in the same atomic step, so the
gate never counts a purchase twice nor forgets one (docs/purchase-path.md).

A change's rank is version * 2 + deleted. Higher than the stored row's: applied. Equal:
duplicate, nothing written. Lower: stale, nothing written.

Returns { prevAvailable, published, n, channelsStale, status_1 .. status_n, loc1, row1, loc2, row2, ... }
  prevAvailable  the summary's available before this call, -1 when the SKU had no view
  published      the highest SKU version whose effects were published (mark-published.lua), -1 if none
  channelsStale  1 when the view holds channel figures of a newer configuration than ARGV's (the
                 caller reloads its configuration and recomputes the SKU), else 0
  status_i       1 applied, 0 duplicate, -1 stale
  loc/row pairs  the SKU's rows after this call; none when every change was stale
]]
--- @include "../../purchase/lua/includes/pending-entry"
--- @include "includes/channel-availability"
--- @include "includes/backorder-allowance"
local STRIDE = 4
local function fields(text)
  local f = {}
  for x in string.gmatch(text, '([^|]+)') do f[#f + 1] = tonumber(x) end
  return f
end

local force = ARGV[1] == '1'
local n = tonumber(ARGV[2])
local channelSpec = ARGV[3 + STRIDE * n]
local channelsStale = 0

-- One read of each hash; everything else is computed here.
local all = redis.call('HGETALL', KEYS[1])
local meta = redis.call('HMGET', KEYS[2], 'available', 'published')
local prevAvailable = -1
if meta[1] then prevAvailable = tonumber(meta[1]) end
local published = -1
if meta[2] then published = tonumber(meta[2]) end

local index = {}
for i = 1, #all, 2 do index[all[i]] = i + 1 end

local statuses = {}
local written = {}
local any = false
for c = 0, n - 1 do
  local b = 3 + c * STRIDE
  local loc = ARGV[b]
  local del = tonumber(ARGV[b + 1])
  local inRank = tonumber(ARGV[b + 2]) * 2 + del
  local at = index[loc]
  local status = 1
  if at then
    local f = fields(all[at])
    local curRank = f[4] * 2 + f[5]
    if inRank < curRank then
      status = -1
    elseif inRank == curRank and not force then
      status = 0
    end
  end
  statuses[#statuses + 1] = status
  if status >= 0 then any = true end
  if status == 1 then
    local row = ARGV[b + 3]
    if at then
      all[at] = row
    else
      all[#all + 1] = loc
      all[#all + 1] = row
      index[loc] = #all
    end
    written[#written + 1] = loc
    written[#written + 1] = row
  end
end

if #written > 0 then
  redis.call('HSET', KEYS[1], unpack(written))
  local onHand, reserved, safety, available = 0, 0, 0, 0
  local maxVersion, topRank, deleted, commitTs = 0, -1, 0, 0
  local incoming, backordered, nextEta, policy, limit = 0, 0, 0, 0, -1
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
      incoming = incoming + (f[7] or 0)
      backordered = backordered + (f[8] or 0)
      local eta = f[9] or 0
      if eta > 0 and (nextEta == 0 or eta < nextEta) then nextEta = eta end
      if (f[10] or 0) > policy then policy = f[10] end
      if (f[11] or -1) > limit then limit = f[11] end
    end
  end
  redis.call('HSET', KEYS[2],
    'onHand', onHand, 'reserved', reserved, 'safetyStock', safety, 'available', available,
    'version', string.format('%d', maxVersion), 'deleted', deleted,
    'commitTs', string.format('%d', commitTs),
    'incoming', incoming, 'backordered', backordered, 'nextEta', string.format('%d', nextEta),
    'backorderable', backorderAllowance(policy, limit, incoming, backordered))
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', maxVersion)
  if #due > 0 then
    local units = 0
    for i = 1, #due do units = units + pendingQty(due[i]) end
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', maxVersion)
    redis.call('HINCRBY', KEYS[3], 'unreflected', -units)
  end
  if channelSpec and channelSpec ~= '' then
    if writeChannels(KEYS[2], all, fields, cjson.decode(channelSpec)) == 0 then channelsStale = 1 end
  end
end

local out = { prevAvailable, published, n, channelsStale }
for i = 1, #statuses do out[#out + 1] = statuses[i] end
if any then
  for i = 1, #all do out[#out + 1] = all[i] end
end
return out
