/** Redis client factory (ioredis). Commands fail fast while disconnected instead of queueing forever. */
import { Redis } from 'ioredis';

export function createRedis(url: string, options: { lazy?: boolean } = {}): Redis {
  return new Redis(url, {
    lazyConnect: options.lazy ?? false,
    maxRetriesPerRequest: 3,
    enableOfflineQueue: true,
    connectTimeout: 3000,
  });
}
