-- Gate availability of a SKU (docs/purchase-path.md, "The gate"):
--     available = view.available + view.backorderable - inflight - unreflected
-- backorderable: what the SKU's backorder policy allows beyond on hand (docs/incoming.md; 0 for
-- the default policy none, so the rule is unchanged for SKUs that do not use it).
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
    view = redis.call('HMGET', viewKey, 'available', 'deleted', 'backorderable', 'c:' .. channel)
  else
    view = redis.call('HMGET', viewKey, 'available', 'deleted', 'backorderable')
  end
  local terms = redis.call('HMGET', gateKey, 'inflight', 'unreflected')
  local known = view[1] ~= false and view[2] ~= '1'
  local figure = view[1]
  if channel then
    if known and view[4] == false then return 0, known, true end
    figure = view[4]
  end
  -- Units the SKU's backorder policy lets the gate sell beyond on hand (docs/incoming.md); the
  -- write-back takes on-hand units first and re-checks the allowance under lock in Postgres.
  local beyond = tonumber(view[3]) or 0
  return (tonumber(figure) or 0) + beyond - (tonumber(terms[1]) or 0) - (tonumber(terms[2]) or 0), known, false
end
