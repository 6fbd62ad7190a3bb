--[[
mark-published.lua: records that the effects (deltas, levels, feed entry; or a SKU's alerts) of
each SKU's state up to a version were published, so that a later duplicate of an already-published
change is not re-emitted, while a duplicate whose effects may have been lost (a crash between
apply and publish, or a change applied by a rebuild) still is. Several SKUs per call (one batch's
marks in one command on one server; on a Redis Cluster the caller groups the keys by slot).

numkeys  N (the caller's first argument, before the keys)
KEYS[i]  the hash holding field `published`: <prefix>:{<sku>} (summary) or the SKU's alert hash
ARGV[i]  the version published for KEYS[i]
Returns  the number of marks raised (a mark is never lowered)
]]
-- Every version is checked before any mark moves: a refused call changes nothing.
local versions = {}
for i = 1, #KEYS do
  versions[i] = tonumber(ARGV[i])
  if versions[i] == nil then return redis.error_reply('ERR mark-published: version ' .. i .. ' is not a number') end
end
local raised = 0
for i = 1, #KEYS do
  local cur = tonumber(redis.call('HGET', KEYS[i], 'published') or '-1')
  local v = versions[i]
  if v > cur then
    redis.call('HSET', KEYS[i], 'published', ARGV[i])
    raised = raised + 1
  end
end
return raised
