/**
 * A live tail of the views as the processor updates them: reads the gateway feed stream
 * (<prefix>:feed) from its end and prints each SKU change with its delay from the Postgres
 * commit. `npm start` shows it, so a user watches a psql UPDATE arrive in the view.
 */
import type { RedisClient } from '../lib/redis.ts';
import { decodeFeedStates, type SkuState } from '../lib/contracts/feed.ts';
import { rateLimitedWriter } from '../lib/rate-limited-writer.ts';

export interface FeedTail {
  stop(): Promise<void>;
}

export function formatFeedEntry(s: SkuState, receivedAt: number): string {
  const lag = Math.max(0, receivedAt - s.commitTs);
  return (
    `${new Date(s.commitTs).toISOString().slice(11, 23)}  ${s.sku.padEnd(22)} available ${String(s.available).padStart(6)}` +
    `  on_hand ${String(s.onHand).padStart(6)}  reserved ${String(s.reserved).padStart(4)}  v${s.version}${s.deleted ? ' (deleted)' : ''}` +
    `  commit -> view ${lag} ms`
  );
}

export function startFeedTail(deps: { redis: RedisClient; feedKey: string; write: (line: string) => void; maxLinesPerSecond?: number }): FeedTail {
  // XREAD BLOCK holds its connection, so the tail gets its own.
  const conn = deps.redis.duplicate();
  conn.on('error', () => undefined);
  const out = rateLimitedWriter(deps.write, deps.maxLinesPerSecond ?? 20);
  let running = true;
  const loop = (async () => {
    let last = '$';
    while (running) {
      try {
        const res = (await conn.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', deps.feedKey, last)) as Array<[string, Array<[string, string[]]>]> | null;
        const now = Date.now();
        for (const [, entries] of res ?? []) {
          for (const [id, list] of entries) {
            last = id;
            for (const state of decodeFeedStates(list)) out.write(formatFeedEntry(state, now));
          }
        }
      } catch {
        if (running) await new Promise((r) => setTimeout(r, 500));
      }
    }
  })();
  return {
    async stop() {
      running = false;
      out.close();
      conn.disconnect();
      await loop;
    },
  };
}
