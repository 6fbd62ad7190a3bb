-- Gate availability of a SKU (docs/purchase-path.md, "The gate"):
--     available = view.available - inflight - unreflected
-- view.available is the SKU's committed availability folded from CDC (apply-rows-4.lua); inflight
-- counts units of accepted holds whose write-back has not committed yet; unreflected counts units
-- written back at a SKU version the view has not reached yet. The TypeScript twin is
-- purchase/domain/gate-availability.ts.
-- With a sales channel (docs/channels.md), view.available is the channel's figure `c:<channel>`,
-- written by the same apply script from the same rows. The SKU's inflight and unreflected units
-- count against every channel: a hold not yet in the view may have come from any location, so
-- this never over-counts a channel (it may under-count one for the moment a hold takes to reach
-- the view).
-- Returns available (a missing view counts as 0), whether the SKU is known (a view that is not
-- deleted), and, with a channel, whether its figure is still missing (a channel just created).
local function gateAvailable(viewKey, gateKey, channel)
  local view
  if channel then
    view = redis.call('HMGET', viewKey, 'available', 'deleted', 'c:' .. channel)
  else
    view = redis.call('HMGET', viewKey, 'available', 'deleted')
  end
  local terms = redis.call('HMGET', gateKey, 'inflight', 'unreflected')
  local known = view[1] ~= false and view[2] ~= '1'
  local figure = view[1]
  if channel then
    if known and view[3] == false then return 0, known, true end
    figure = view[3]
  end
  return (tonumber(figure) or 0) - (tonumber(terms[1]) or 0) - (tonumber(terms[2]) or 0), known, false
end
