/**
 * A live tail of the views as the processor updates them: reads the gateway feed stream
 * (<prefix>:feed) from its end and prints each SKU change with its delay from the Postgres
 * commit. `npm start` shows it, so a user watches a psql UPDATE arrive in the view.
 */
import type { Redis } from 'ioredis';
import { rateLimitedWriter } from '../lib/rate-limited-writer.ts';

export interface FeedTail {
  stop(): Promise<void>;
}

function fieldsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}

export function formatFeedEntry(f: Record<string, string>, receivedAt: number): string {
  const lag = Math.max(0, receivedAt - Number(f.commitTs));
  return (
    `${new Date(Number(f.commitTs)).toISOString().slice(11, 23)}  ${(f.sku ?? '?').padEnd(22)} available ${String(f.available).padStart(6)}` +
    `  on_hand ${String(f.onHand).padStart(6)}  reserved ${String(f.reserved).padStart(4)}  v${f.version}${f.deleted === '1' ? ' (deleted)' : ''}` +
    `  commit -> view ${lag} ms`
  );
}

export function startFeedTail(deps: { redis: Redis; feedKey: string; write: (line: string) => void; maxLinesPerSecond?: number }): FeedTail {
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
            out.write(formatFeedEntry(fieldsOf(list), now));
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
