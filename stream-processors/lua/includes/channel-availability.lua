-- Per-channel availability of one SKU: the Lua twin of channelAvailability in
-- lib/contracts/channels.ts (the rule is in that file's header; an integration test compares
-- both). `avail` maps location -> sellable units of live rows; `terms` is the decoded `c` list of
-- encodeChannelTerms: { id, fenceKind (0 units, 1 basis points, -1 none), fenceValue, {locations} }.
-- Returns a list of figures in the order of `terms`.
local function channelAvailability(avail, terms)
  -- Each fenced channel's fence, placed on its locations in priority order (fencePins); `total`
  -- sums every channel's pins per location, so a channel's figure subtracts total minus its own
  -- (linear in channels x locations: this runs for every change the processor applies).
  local n = #terms
  local total, own = {}, {}
  for ci = 1, n do
    local t = terms[ci]
    local locs = t[4]
    local nl = #locs
    local p = 0
    for k = 1, nl do p = p + (avail[locs[k]] or 0) end
    local left = 0
    if t[2] == 0 then
      left = math.min(t[3], p)
    elseif t[2] == 1 then
      left = math.floor(p * t[3] / 10000)
    end
    local mine = {}
    for k = 1, nl do
      if left <= 0 then break end
      local loc = locs[k]
      local take = math.min(left, avail[loc] or 0)
      if take > 0 then
        mine[loc] = take
        total[loc] = (total[loc] or 0) + take
      end
      left = left - take
    end
    own[ci] = mine
  end
  local out = {}
  for ci = 1, n do
    local locs = terms[ci][4]
    local mine = own[ci]
    local a = 0
    for k = 1, #locs do
      local loc = locs[k]
      local free = (avail[loc] or 0) - ((total[loc] or 0) - (mine[loc] or 0))
      if free > 0 then a = a + free end
    end
    out[ci] = a
  end
  return out
end

-- Writes a SKU's channel figures into its summary hash (fields c:<id>, `chs` the list of ids,
-- `cfg` the configuration version) unless the hash already holds figures of a newer
-- configuration. `all` is the SKU's rows as HGETALL returns them, `parse` decodes one row.
-- Returns 1 when written (or nothing to write), 0 when the caller's configuration is older.
local function writeChannels(summaryKey, all, parse, spec)
  local meta = redis.call('HMGET', summaryKey, 'cfg', 'chs')
  local stored = tonumber(meta[1]) or 0
  if spec.v < stored then return 0 end
  local avail = {}
  for i = 1, #all, 2 do
    local f = parse(all[i + 1])
    if f[5] == 0 then
      local a = f[1] - f[2] - f[3]
      if a < 0 then a = 0 end
      avail[all[i]] = a
    end
  end
  local figures = channelAvailability(avail, spec.c)
  local fields, ids, keep = {}, {}, {}
  for ci, t in ipairs(spec.c) do
    fields[#fields + 1] = 'c:' .. t[1]
    fields[#fields + 1] = figures[ci]
    ids[#ids + 1] = t[1]
    keep[t[1]] = true
  end
  if meta[2] then
    for id in string.gmatch(meta[2], '([^,]+)') do
      if not keep[id] then redis.call('HDEL', summaryKey, 'c:' .. id) end
    end
  end
  if #ids == 0 and not meta[2] and stored == spec.v then return 1 end
  fields[#fields + 1] = 'cfg'
  fields[#fields + 1] = spec.v
  fields[#fields + 1] = 'chs'
  fields[#fields + 1] = table.concat(ids, ',')
  redis.call('HSET', summaryKey, unpack(fields))
  return 1
end
