/**
 * Reads the processor's feed stream (<prefix>:feed) — every gateway process reads all of it with
 * XREAD BLOCK from its own position, so a client on any instance sees every change — and serves
 * ranges of it for clients resuming after a reconnect.
 */
import type { RedisClient } from '../../lib/redis.ts';
import { decodeFeedStates, FEED_PACK_MAX, type SkuState } from '../../lib/contracts/feed.ts';
import type { Logger } from '../../lib/logger.ts';

export interface FeedEntry {
  /**
   * Unique per state: the stream id, with `/<index>` for a state of a pack (several states share
   * one stream id; the hub keys shared frames by these ids).
   */
  id: string;
  state: SkuState;
  /** When this gateway received the entry (ms). */
  rts: number;
}

/** Appends one stream entry's states (one, or a pack's) to `out`. */
function pushEntries(out: FeedEntry[], id: string, fields: string[], rts: number): void {
  if (fields[0] !== 'pack') {
    for (const state of decodeFeedStates(fields)) out.push({ id, rts, state });
    return;
  }
  decodeFeedStates(fields).forEach((state, i) => out.push({ id: `${id}/${i}`, rts, state }));
}

type XReadReply = Array<[string, Array<[string, string[]]>]> | null;

/** The largest stream id Redis accepts. */
export const MAX_ID = '18446744073709551615-18446744073709551615';

/** Compares stream ids ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  // BigInt: a client's cursor may use all 64 bits of either half, past Number's exact range.
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  const d = am === bm ? as - bs : am - bm;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export class FeedReader {
  private readonly redis: RedisClient;
  private readonly reader: RedisClient;
  private readonly key: string;
  private readonly log: Logger;
  private running = false;
  private loop: Promise<void> | undefined;
  /** Id of the last entry this gateway processed; the position clients get as their cursor. */
  lastId = '0-0';
  connected = false;

  constructor(deps: { redis: RedisClient; key: string; logger: Logger }) {
    this.redis = deps.redis;
    // XREAD BLOCK holds a connection: the reader gets its own.
    this.reader = deps.redis.duplicate();
    this.reader.on('error', () => undefined);
    this.key = deps.key;
    this.log = deps.logger.child({ component: 'feed-reader', stream: deps.key });
  }

  /** Starts from the current end of the stream. */
  async start(onEntries: (entries: FeedEntry[]) => void): Promise<void> {
    const last = (await this.redis.xrevrange(this.key, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    this.lastId = last[0]?.[0] ?? '0-0';
    this.running = true;
    this.connected = true;
    this.loop = (async () => {
      while (this.running) {
        try {
          const res = (await this.reader.xread('COUNT', 2000, 'BLOCK', 500, 'STREAMS', this.key, this.lastId)) as XReadReply;
          this.connected = true;
          if (!res) continue;
          const rts = Date.now();
          const entries: FeedEntry[] = [];
          for (const [, list] of res) {
            for (const [id, fields] of list) {
              this.lastId = id;
              pushEntries(entries, id, fields, rts);
            }
          }
          if (entries.length) onEntries(entries);
        } catch (err) {
          if (!this.running) break;
          if (this.connected) this.log.warn({ err: (err as Error).message }, 'feed read failed; retrying');
          this.connected = false;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();
  }

  /**
   * Entries after `since` up to the current end, or undefined when `since` is older than what the
   * stream still holds (it is trimmed) or more than `max` states behind: the client then needs a
   * snapshot.
   */
  async readSince(since: string, max = 100_000): Promise<FeedEntry[] | undefined> {
    if (since === MAX_ID) return []; // nothing can come after the largest id (and Redis refuses "(max")
    const first = (await this.redis.xrange(this.key, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
    const firstId = first[0]?.[0];
    // Nothing trimmed away between `since` and the first entry we still hold?
    if (firstId && compareIds(since, firstId) < 0) {
      const info = (await this.redis.xinfo('STREAM', this.key)) as unknown[];
      const i = info.indexOf('entries-added');
      // Without trimming, ids before the first one were never written: still complete.
      const added = i >= 0 ? Number(info[i + 1]) : Number.NaN;
      const length = await this.redis.xlen(this.key);
      if (!(added === length)) return undefined;
    }
    const rts = Date.now();
    const out: FeedEntry[] = [];
    let from = `(${since}`;
    let seen = 0;
    for (;;) {
      // Never more than max + 1 entries in all: one past the bound says "too far behind". A pack
      // holds up to FEED_PACK_MAX states and past max states is too far behind too, so a page
      // asks for no more entries than could hold the states still allowed (at least 200): in
      // all at most about 2 * max + 20,000 states are decoded, whatever the cursor.
      const want = Math.min(5000, max + 1 - seen, Math.max(200, Math.ceil((max + 1 - out.length) / FEED_PACK_MAX)));
      const page = (await this.redis.xrange(this.key, from, '+', 'COUNT', want)) as Array<[string, string[]]>;
      seen += page.length;
      if (seen > max) return undefined; // too far behind: a snapshot is cheaper
      for (const [id, fields] of page) pushEntries(out, id, fields, rts);
      if (out.length > max) return undefined;
      if (page.length < want) return out;
      from = `(${page[page.length - 1]![0]}`;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.reader.disconnect();
    await this.loop;
  }
}
