--[[
alert-step-1.lua: steps the stock-alert state machine of ONE SKU's (sku, channel) pairs to a SKU
version, at most once per version, and returns the alerts decided but not yet published. The Lua
twin of stream-processors/domain/alerts.ts (stepAlert, rearmLevel); an integration test runs both
on the same random sequences and compares. docs/stream-processors.md, "Stock alerts".

KEYS[1]  <prefix>:{<sku>}:alerts  hash (hash tag {<sku>}: the SKU's slot)
           s|<channel>            "state|version": in_stock, low or out, as of that SKU version
           a|<version>|<channel>  "kind|available|threshold|commitTs": an alert decided at that version
           published              highest version whose alerts were published (mark-published.lua)
           last                   highest version at which an alert was decided (skips the scan when all are published)
         <channel> is '' for the pooled figure.
ARGV[1]  version: the SKU version of the state the figures belong to
ARGV[2]  commitTs (ms) of that state
ARGV[3]  n, the number of figures that follow, 3 arguments each: channel ('' pooled), available, threshold

A (sku, channel) whose stored version is at or above ARGV[1] is not stepped again: a duplicate or
replayed change decides nothing twice. Alerts at or below `published` are deleted here.

Returns { version_1, channel_1, kind_1, available_1, threshold_1, commitTs_1, ... }: every alert
of the SKU above `published` (the ones just decided and any a crash kept from being published),
so a retried batch re-emits them with the same ids.
]]
local version = tonumber(ARGV[1])
local n = tonumber(ARGV[3])

local function rearm(t)
  return t + math.max(1, math.ceil(t / 10))
end

-- stepAlert of domain/alerts.ts
local function step(state, a, t)
  if not state then
    if a <= 0 then return 'out', false end
    if a < t then return 'low', false end
    return 'in_stock', false
  end
  if a <= 0 then
    if state == 'out' then return 'out', false end
    return 'out', 'OUT_OF_STOCK'
  end
  if state == 'out' then
    if a >= rearm(t) then return 'in_stock', 'BACK_IN_STOCK' end
    return 'low', 'BACK_IN_STOCK'
  end
  if state == 'in_stock' then
    if a < t then return 'low', 'LOW_STOCK' end
    return 'in_stock', false
  end
  if a >= rearm(t) then return 'in_stock', false end
  return 'low', false
end

-- One read of every state, one write of the states that moved: a (sku, channel) whose state did
-- not change keeps its stored version. That is safe: a replay of a version above it starts from
-- the same state with the same figure, so it decides the same nothing again.
local names = {}
for i = 0, n - 1 do names[i + 1] = 's|' .. ARGV[4 + i * 3] end
local current = redis.call('HMGET', KEYS[1], 'published', 'last', unpack(names))
local published = tonumber(current[1] or '-1')
local last = tonumber(current[2] or '-1')
local writes = {}
for i = 0, n - 1 do
  local b = 4 + i * 3
  local ch = ARGV[b]
  local cur = current[i + 3]
  local state, at = nil, -1
  if cur then
    local sep = string.find(cur, '|', 1, true)
    state = string.sub(cur, 1, sep - 1)
    at = tonumber(string.sub(cur, sep + 1))
  end
  if version > at then
    local available, threshold = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
    local nextState, kind = step(state, available, threshold)
    if nextState ~= state then
      writes[#writes + 1] = names[i + 1]
      writes[#writes + 1] = nextState .. '|' .. ARGV[1]
    end
    if kind then
      writes[#writes + 1] = 'a|' .. ARGV[1] .. '|' .. ch
      writes[#writes + 1] = kind .. '|' .. ARGV[b + 1] .. '|' .. ARGV[b + 2] .. '|' .. ARGV[2]
      if version > last then last = version end
    end
  end
end
if #writes > 0 then
  writes[#writes + 1] = 'last'
  writes[#writes + 1] = last
  redis.call('HSET', KEYS[1], unpack(writes))
end

-- Nothing decided above `published`: no alert to return (and the published ones are pruned the
-- next time the SKU has one).
if last <= published then return {} end
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 'a|' then
    local sep = string.find(f, '|', 3, true)
    local v = string.sub(f, 3, sep - 1)
    if tonumber(v) <= published then
      redis.call('HDEL', KEYS[1], f)
    else
      local rec = all[i + 1]
      local p1 = string.find(rec, '|', 1, true)
      local p2 = string.find(rec, '|', p1 + 1, true)
      local p3 = string.find(rec, '|', p2 + 1, true)
      out[#out + 1] = v
      out[#out + 1] = string.sub(f, sep + 1)
      out[#out + 1] = string.sub(rec, 1, p1 - 1)
      out[#out + 1] = string.sub(rec, p1 + 1, p2 - 1)
      out[#out + 1] = string.sub(rec, p2 + 1, p3 - 1)
      out[#out + 1] = string.sub(rec, p3 + 1)
    end
  end
end
return out
