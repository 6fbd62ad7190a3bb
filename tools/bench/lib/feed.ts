/** Reading a gateway feed stream (`<prefix>:feed`) with XREAD BLOCK, shared by the latency benchmarks. */
import type { RedisClient } from '../../../lib/redis.ts';
import { decodeFeedStates, type SkuState } from '../../../lib/contracts/feed.ts';

/**
 * Reads `key` from after entry `from` while `running()` holds; every entry, decoded, goes to
 * `onEntry(state, now)` with the time its reply arrived.
 */
export async function readFeed(redis: RedisClient, key: string, from: string, running: () => boolean, onEntry: (state: SkuState, receivedAt: number) => void): Promise<void> {
  let lastId = from;
  while (running()) {
    const reply = (await redis.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', key, lastId)) as Array<[string, Array<[string, string[]]>]> | null;
    const now = Date.now();
    if (!reply) continue;
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) {
        lastId = id;
        for (const state of decodeFeedStates(fields)) onEntry(state, now);
      }
    }
  }
}
