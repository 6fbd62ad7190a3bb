/** Redis client factory (ioredis). Commands fail fast while disconnected instead of queueing forever. */
import { Redis } from 'ioredis';
import { resolveLuaIncludes } from './lua-include.ts';

/**
 * `autoPipelining`: commands issued in the same event-loop tick go out in one write — for hot
 * request paths where many independent calls are in flight at once (the purchase gate).
 */
export function createRedis(url: string, options: { lazy?: boolean; autoPipelining?: boolean } = {}): Redis {
  return new Redis(url, {
    lazyConnect: options.lazy ?? false,
    enableAutoPipelining: options.autoPipelining ?? false,
    maxRetriesPerRequest: 3,
    enableOfflineQueue: true,
    connectTimeout: 3000,
    // Reconnect soon after Redis is back (ioredis' default backs off to 2 s between attempts):
    // 50, 100, 200, 400, then every 500 ms. A command waiting for the connection still fails
    // after 3 attempts (fail fast: callers answer 503 or retry their batch).
    retryStrategy: (times: number) => Math.min(25 * 2 ** times, 500),
  });
}

export type LuaCommand = (...args: Array<string | number>) => Promise<unknown>;

/**
 * Defines `name` on the connection (once; pipelines get it too) as the Lua script in `file`:
 * loaded once, called with EVALSHA and a NOSCRIPT fallback (ioredis `defineCommand`). By the
 * project's convention a file named `<script>-<N>.lua` takes N keys; any other file takes the
 * number of keys as its first argument. `--- @include "name"` lines are resolved first
 * (lib/lua-include.ts), so the script Redis hashes is the complete one. Returns the command bound
 * to the connection.
 */
export function defineLuaCommand(redis: Redis, name: string, file: string): LuaCommand {
  const commands = redis as unknown as Record<string, LuaCommand | undefined>;
  if (!commands[name]) {
    const fixed = /-(\d+)\.lua$/.exec(file);
    redis.defineCommand(name, { lua: resolveLuaIncludes(file), ...(fixed ? { numberOfKeys: Number(fixed[1]) } : {}) });
  }
  return commands[name]!.bind(redis);
}

/**
 * Every SKU whose key matches `pattern`, in pages, via SCAN (never KEYS): `skuOf` reads the SKU
 * back from a key (lib/contracts/redis-keys.ts has one per key family).
 */
export async function* scanSkus(redis: Redis, pattern: string, skuOf: (key: string) => string | undefined, count = 1000): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    cursor = next;
    const skus = keys.map(skuOf).filter((s): s is string => s !== undefined);
    if (skus.length) yield skus;
  } while (cursor !== '0');
}
