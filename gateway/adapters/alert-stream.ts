/**
 * Reads the processor's alert stream (<prefix>:alerts, entries in lib/contracts/feed.ts) from its
 * current end with XREAD BLOCK: every gateway reads all of it, like the feed. Alerts are live
 * events: a client that was away gets none it missed here (stock.alerts on Kafka is the durable
 * record), so there is no resume and no range read.
 */
import type { RedisClient } from '../../lib/redis.ts';
import { decodeAlertEntry } from '../../lib/contracts/feed.ts';
import type { Logger } from '../../lib/logger.ts';
import type { StockAlert } from '../../schemas/generated/avro-types.ts';

type XReadReply = Array<[string, Array<[string, string[]]>]> | null;

export class AlertStreamReader {
  private readonly reader: RedisClient;
  private readonly key: string;
  private readonly log: Logger;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(deps: { redis: RedisClient; key: string; logger: Logger }) {
    // XREAD BLOCK holds a connection: the reader gets its own.
    this.reader = deps.redis.duplicate();
    this.reader.on('error', () => undefined);
    this.key = deps.key;
    this.log = deps.logger.child({ component: 'alert-reader', stream: deps.key });
  }

  async start(onAlerts: (alerts: StockAlert[]) => void): Promise<void> {
    const last = (await this.reader.xrevrange(this.key, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    let lastId = last[0]?.[0] ?? '0-0';
    this.running = true;
    this.loop = (async () => {
      let failing = false;
      while (this.running) {
        try {
          const res = (await this.reader.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', this.key, lastId)) as XReadReply;
          failing = false;
          const alerts: StockAlert[] = [];
          for (const [, list] of res ?? []) {
            for (const [id, fields] of list) {
              lastId = id;
              const a = decodeAlertEntry(fields);
              if (a) alerts.push(a);
            }
          }
          if (alerts.length) onAlerts(alerts);
        } catch (err) {
          if (!this.running) break;
          if (!failing) this.log.warn({ err: (err as Error).message }, 'alert stream read failed; retrying');
          failing = true;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.reader.disconnect();
    await this.loop;
  }
}
