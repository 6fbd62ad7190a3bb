/**
 * The Redis side of stock alerts: the only module that calls lua/alert-step-1.lua (the state
 * machine per (sku, channel), stepped once per SKU version, in the SKU's slot) and writes the
 * alert stream gateways read (`<p>:alerts`, entries in lib/contracts/feed.ts). Rules:
 * domain/alerts.ts; docs/stream-processors.md "Stock alerts".
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../../lib/redis.ts';
import { encodeAlertEntry } from '../../lib/contracts/feed.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';
import { defineLuaCommand, execEach, isCluster } from '../../lib/redis.ts';
import type { StockAlert } from '../../schemas/generated/avro-types.ts';
import { ALERT_KINDS, toStockAlert, type AlertKind } from '../domain/alerts.ts';
import { markPublished } from './redis-views.ts';

const LUA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lua');

/** One SKU state to step: its version and commit time, and each channel's figure with its threshold. */
export interface AlertStepRequest {
  sku: string;
  version: number;
  commitTs: number;
  inputs: Array<{ channel: string | null; available: number; threshold: number }>;
}

type AlertStepFn = (key: string, ...args: Array<string | number>) => unknown;

const KIND_SET: ReadonlySet<string> = new Set(ALERT_KINDS);

// A reply of another shape is a script/code mismatch, not the change's fault: a plain Error, so
// the batch is retried (and the process crashes if it persists), never dead-lettered.
function parseReply(sku: string, reply: unknown): StockAlert[] {
  if (!Array.isArray(reply) || reply.length % 6 !== 0) throw new Error(`unexpected alert-step reply: ${JSON.stringify(reply)}`);
  const out: StockAlert[] = [];
  for (let i = 0; i < reply.length; i += 6) {
    const kind = String(reply[i + 2]);
    if (!KIND_SET.has(kind)) throw new Error(`unexpected alert kind from alert-step: ${kind}`);
    const channel = String(reply[i + 1]);
    out.push(
      toStockAlert({
        sku,
        channel: channel === '' ? null : channel,
        kind: kind as AlertKind,
        available: Number(reply[i + 3]),
        threshold: Number(reply[i + 4]),
        version: Number(reply[i]),
        commitTs: Number(reply[i + 5]),
      }),
    );
  }
  return out;
}

export class RedisAlerts {
  readonly keys: RedisKeys;
  private readonly redis: RedisClient;

  constructor(deps: { redis: RedisClient; prefix: string }) {
    this.redis = deps.redis;
    this.keys = redisKeys(deps.prefix, { cluster: isCluster(deps.redis) });
    defineLuaCommand(deps.redis, 'invAlertStep', path.join(LUA_DIR, 'alert-step-1.lua'));
    defineLuaCommand(deps.redis, 'invMarkPublished', path.join(LUA_DIR, 'mark-published.lua'));
  }

  /**
   * Steps every request (in order: per SKU, version order) in one pipeline and returns the alerts
   * not yet published, each once (by alertId), per SKU in version order, channels by id.
   */
  async step(requests: AlertStepRequest[]): Promise<StockAlert[]> {
    if (requests.length === 0) return [];
    const replies = await execEach(this.redis, requests, (r) => this.keys.alerts(r.sku), (p, r) => {
      const args: Array<string | number> = [r.version, r.commitTs, r.inputs.length];
      for (const i of r.inputs) args.push(i.channel ?? '', i.available, i.threshold);
      (p as unknown as { invAlertStep: AlertStepFn }).invAlertStep(this.keys.alerts(r.sku), ...args);
    });
    const byId = new Map<string, StockAlert>();
    replies.forEach(([err, reply], i) => {
      if (err) throw err;
      for (const a of parseReply(requests[i]!.sku, reply)) byId.set(a.alertId, a);
    });
    return [...byId.values()].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : a.version - b.version || (a.channel ?? '').localeCompare(b.channel ?? '')));
  }

  /** Records, per SKU, the highest version whose alerts are now published (they are pruned on the next step). */
  async markPublished(alerts: StockAlert[]): Promise<void> {
    const marks = new Map<string, number>();
    for (const a of alerts) marks.set(a.sku, Math.max(a.version, marks.get(a.sku) ?? -1));
    if (marks.size === 0) return;
    await markPublished(this.redis, [...marks].map(([sku, version]) => [this.keys.alerts(sku), version]));
  }

  /** Appends alerts to the gateways' alert stream, trimmed to about maxLen entries. */
  async appendStream(alerts: StockAlert[], maxLen: number): Promise<void> {
    if (alerts.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const a of alerts) pipeline.xadd(this.keys.alertStream, 'MAXLEN', '~', maxLen, '*', ...encodeAlertEntry(a));
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  }
}
