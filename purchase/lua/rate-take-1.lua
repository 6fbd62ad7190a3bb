--[[
rate-take-1.lua: takes one token from one rate-limit bucket. On a Redis Cluster the customer's and
the address's buckets live in other slots than the purchase's keys, so the adapters take them
with this script before the gate or ticket script (which then runs with no-limit buckets).

KEYS[1] <prefix>:rl:c:<customerId> or <prefix>:rl:a:<address>   hash  the token bucket
ARGV[1] JSON { now (ms), bucket = { capacity, perSec } }
Returns 0 when a token was taken, else the milliseconds until one is.
]]
--- @include "includes/token-bucket"

local a = cjson.decode(ARGV[1])
return takeToken(KEYS[1], a.bucket, a.now)
