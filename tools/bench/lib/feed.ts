/** Reading a gateway feed stream (`<prefix>:feed`) with XREAD BLOCK, shared by the latency benchmarks. */
import type { Redis } from 'ioredis';

/**
 * Reads `key` from after entry `from` while `running()` holds; every entry's fields go to
 * `onEntry(fields, now)` with the time its reply arrived.
 */
export async function readFeed(redis: Redis, key: string, from: string, running: () => boolean, onEntry: (fields: Map<string, string>, receivedAt: number) => void): Promise<void> {
  let lastId = from;
  while (running()) {
    const reply = (await redis.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', key, lastId)) as Array<[string, Array<[string, string[]]>]> | null;
    const now = Date.now();
    if (!reply) continue;
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) {
        lastId = id;
        const m = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!, fields[i + 1]!);
        onEntry(m, now);
      }
    }
  }
}
