-- Gate availability of a SKU (docs/purchase-path.md, "The gate"):
--     available = view.available - inflight - unreflected
-- view.available is the SKU's committed availability folded from CDC (apply-rows-4.lua); inflight
-- counts units of accepted holds whose write-back has not committed yet; unreflected counts units
-- written back at a SKU version the view has not reached yet. The TypeScript twin is
-- purchase/domain/gate-availability.ts.
-- Returns available (a missing view counts as 0) and whether the SKU is known (a view that is
-- not deleted).
local function gateAvailable(viewKey, gateKey)
  local view = redis.call('HMGET', viewKey, 'available', 'deleted')
  local terms = redis.call('HMGET', gateKey, 'inflight', 'unreflected')
  local known = view[1] ~= false and view[2] ~= '1'
  return (tonumber(view[1]) or 0) - (tonumber(terms[1]) or 0) - (tonumber(terms[2]) or 0), known
end
