/** Redis client factory (ioredis). Commands fail fast while disconnected instead of queueing forever. */
import { Redis } from 'ioredis';

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
  });
}
