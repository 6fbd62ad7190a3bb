import { markEpoch } from '../../stream-processors/epoch.ts';
import type { RedisClient } from '../../lib/redis.ts';

/** A prefix private to a test starts "rebuilt": every slot's epoch marker set. */
export async function ensureEpochMarkers(redis: RedisClient, prefix: string): Promise<void> {
  await markEpoch(redis, prefix, { test: true });
}
