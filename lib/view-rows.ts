/**
 * Reading the stock views' rows (the layout of lib/contracts/redis-keys.ts, the row format of
 * lib/contracts/stock-view.ts): the one read both the processor (stream-processors/adapters/
 * redis-views.ts, which writes the views) and the gateway (gateway/adapters/stock-reader.ts,
 * read-only) do. Must not: write, or know who asks.
 */
import { execEach, type RedisClient } from './redis.ts';
import type { RedisKeys } from './contracts/redis-keys.ts';
import { decodeRows, type SkuRows } from './contracts/stock-view.ts';

/** One HGETALL per SKU, in one pipeline; SKUs without rows are left out. */
export async function readViewRows(redis: RedisClient, keys: Pick<RedisKeys, 'rows'>, skus: readonly string[]): Promise<Map<string, SkuRows>> {
  const out = new Map<string, SkuRows>();
  if (skus.length === 0) return out;
  const replies = await execEach(redis, skus, (sku) => keys.rows(sku), (p, sku) => p.hgetall(keys.rows(sku)));
  replies.forEach(([err, hash], i) => {
    if (err) throw err;
    const rows = decodeRows((hash ?? {}) as Record<string, string>);
    if (Object.keys(rows).length > 0) out.set(skus[i]!, rows);
  });
  return out;
}
