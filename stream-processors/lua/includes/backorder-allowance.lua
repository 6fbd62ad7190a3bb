-- Units of a SKU sellable beyond its on-hand availability (docs/incoming.md): the Lua twin of
-- backorderAllowance in lib/contracts/backorder.ts and backorder_allowance() in migration 0018.
-- policy: 0 none, 1 backorder, 2 preorder; limit: -1 none.
local function backorderAllowance(policy, limit, incoming, backordered)
  if policy == 1 then
    return math.max(0, math.max(limit, 0) - backordered)
  elseif policy == 2 then
    local cap = incoming
    if limit >= 0 and limit < cap then cap = limit end
    return math.max(0, cap - backordered)
  end
  return 0
end
