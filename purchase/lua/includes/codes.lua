-- Reply codes of the purchase scripts: refusals negative, other outcomes 0 or positive. Mirrored
-- in purchase/adapters/scripts.ts (SCRIPT_CODE); a unit test keeps the two equal.
local CODE = {
  OK = 0,
  ADMIT = 1,
  WAITLISTED = 2,
  KNOWN = 3,
  REPLAY = 4,
  EMPTY = 5,
  WAIT = 6,
  REBUILDING = -1,
  LIMITED_CUSTOMER = -2,
  LIMITED_ADDRESS = -3,
  UNKNOWN_SKU = -4,
  SOLD_OUT = -5,
  CUSTOMER_LIMIT = -6,
  CHANNEL_PENDING = -7,
}
