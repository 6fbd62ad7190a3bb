-- Token bucket (the purchase rate limits, per customer and per client address): refills `perSec`
-- tokens per second up to `capacity`; one token per attempt. `bucket` is { capacity, perSec };
-- perSec 0 means no limit. Returns 0 when a token was taken, else the milliseconds until one is.
local function takeToken(key, bucket, now)
  local capacity, perSec = bucket.capacity, bucket.perSec
  if perSec <= 0 then return 0 end
  local b = redis.call('HMGET', key, 't', 'ts')
  local tokens, ts = tonumber(b[1]), tonumber(b[2])
  if not tokens then tokens, ts = capacity, now end
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * perSec / 1000)
  if tokens < 1 then return math.ceil((1 - tokens) * 1000 / perSec) end
  redis.call('HSET', key, 't', tostring(tokens - 1), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(capacity / perSec * 1000) + 1000)
  return 0
end
