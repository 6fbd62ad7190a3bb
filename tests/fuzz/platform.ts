/**
 * Set-up shared by the fuzz tests and `npm run fuzz`: private names for one run, catalog and
 * stock rows for the SKUs the fuzzer may name, the child processes with their environment, and
 * a snapshot of everything a refused input must leave unchanged (Postgres rows of those SKUs,
 * their orders and applied adjustments, every Redis key of theirs).
 */
import { CHANNEL_FIELD_PREFIX } from '../../lib/contracts/channels.ts';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../../lib/redis.ts';
import type pg from 'pg';
import { Child, type ServiceName } from './children.ts';

export interface FuzzNames {
  /** Redis prefix, consumer-group stem and SKU stem of this run (lowercase, a-z0-9). */
  id: string;
  prefix: string;
  skus: string[];
  locations: string[];
}

export function fuzzNames(kind: string, skuCount = 3): FuzzNames {
  const id = `fz${kind}${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  return {
    id,
    prefix: id.slice(0, 32),
    skus: Array.from({ length: skuCount }, (_, i) => `${id}-sku-${i}`),
    locations: [`${id}-L1`, `${id}-L2`].map((l) => l.slice(-64)),
  };
}

/** The children's environment: every name private to this run, no fixed ports, no background workers. */
export function childEnv(names: FuzzNames, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_PREFIX: names.prefix,
    PROCESSOR_GROUP_ID: `${names.id}-processor`,
    PROCESSOR_START_FROM: 'latest',
    PROCESSOR_METRICS_PORT: '0',
    PROCESSOR_RECONCILE_INTERVAL_S: '0',
    CONNECTOR_INBOUND_GROUP_ID: `${names.id}-inbound`,
    CONNECTOR_INBOUND_START_FROM: 'latest',
    CONNECTOR_OUTBOUND_GROUP_ID: `${names.id}-outbound`,
    CONNECTOR_MOVEMENTS_GROUP_ID: `${names.id}-movements`,
    CONNECTOR_MOVEMENTS_START_FROM: 'latest',
    CONNECTOR_METRICS_PORT: '0',
    PURCHASE_EXPIRY_INTERVAL_MS: '0',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

export function child(name: ServiceName, names: FuzzNames, extra: Record<string, string> = {}): Child {
  return new Child(name, childEnv(names, extra));
}

/** Catalog entries and stock rows (`onHand` at each location) for the run's SKUs. */
export async function seedSkus(pool: pg.Pool, names: FuzzNames, onHand = 50): Promise<void> {
  await pool.query(`INSERT INTO products (sku, name) SELECT s, 'fuzz' FROM unnest($1::text[]) s ON CONFLICT DO NOTHING`, [names.skus]);
  await pool.query(`INSERT INTO locations (location_id, name) SELECT l, 'fuzz' FROM unnest($1::text[]) l ON CONFLICT DO NOTHING`, [names.locations]);
  await pool.query(
    `INSERT INTO stock_levels (sku, location_id, on_hand) SELECT s, l, $3 FROM unnest($1::text[]) s, unnest($2::text[]) l ON CONFLICT DO NOTHING`,
    [names.skus, names.locations, onHand],
  );
}

/** Touches the rows until the processor has put every SKU in the views (it starts at `latest`). */
export async function waitViews(pool: pg.Pool, redis: RedisClient, names: FuzzNames, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // `published` is marked once the processor has finished the change's batch (views, alert
    // state, feed, topics): only then is every Redis key of the SKU in place for a snapshot.
    const present = await Promise.all(names.skus.map((s) => redis.hexists(`${names.prefix}:{${s}}`, 'published')));
    if (present.every((p) => p === 1)) return;
    if (Date.now() > deadline) throw new Error(`the processor did not fill the views of ${names.skus.join(', ')} within ${timeoutMs} ms`);
    await pool.query(`UPDATE stock_levels SET on_hand = on_hand WHERE sku = ANY($1)`, [names.skus]);
    await sleep(400);
  }
}

export interface StateSnapshot {
  rows: string;
  orders: string;
  adjustments: string;
  redis: Record<string, string>;
}

async function redisDump(redis: RedisClient, pattern: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    for (const k of keys) {
      const type = await redis.type(k);
      const value =
        type === 'hash' ? await redis.hgetall(k) : type === 'string' ? await redis.get(k) : type === 'zset' ? await redis.zrange(k, 0, -1, 'WITHSCORES') : type === 'set' ? (await redis.smembers(k)).sort() : type === 'list' ? await redis.lrange(k, 0, -1) : type;
      // `published` is the processor's own bookkeeping (set after its Kafka send, possibly just
      // after the baseline was taken), not stock state a request could change.
      if (type === 'hash') delete (value as Record<string, string>).published;
      // Sales-channel figures follow the global channel configuration (docs/channels.md), which
      // other suites change while this one runs; they are recomputed, not changed by a request.
      if (type === 'hash') for (const f of Object.keys(value as object)) if (f.startsWith(CHANNEL_FIELD_PREFIX) || f === 'cfg' || f === 'chs') delete (value as Record<string, string>)[f];
      out[k] = JSON.stringify(value, type === 'hash' ? Object.keys(value as object).sort() : undefined);
    }
  } while (cursor !== '0');
  return out;
}

/** What must not change when every input was refused. */
export async function snapshot(pool: pg.Pool, redis: RedisClient, names: FuzzNames, skus = names.skus): Promise<StateSnapshot> {
  const rows = await pool.query(`SELECT sku, location_id, on_hand, reserved, safety_stock, version FROM stock_levels WHERE sku = ANY($1) ORDER BY sku, location_id`, [skus]);
  const orders = await pool.query(
    `SELECT o.id, o.status, l.sku, l.qty FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE l.sku = ANY($1) ORDER BY o.id, l.sku`,
    [skus],
  );
  const adjustments = await pool.query(`SELECT adjustment_id FROM applied_adjustments WHERE sku = ANY($1) ORDER BY adjustment_id`, [skus]);
  const r: Record<string, string> = {};
  for (const s of skus) Object.assign(r, await redisDump(redis, `${names.prefix}:{${s}}*`));
  return { rows: JSON.stringify(rows.rows), orders: JSON.stringify(orders.rows), adjustments: JSON.stringify(adjustments.rows), redis: r };
}

/** Differences between two snapshots, one line each (empty: unchanged). */
export function diffSnapshots(a: StateSnapshot, b: StateSnapshot): string[] {
  const out: string[] = [];
  if (a.rows !== b.rows) out.push(`stock_levels changed: ${a.rows} -> ${b.rows}`);
  if (a.orders !== b.orders) out.push(`orders changed: ${a.orders} -> ${b.orders}`);
  if (a.adjustments !== b.adjustments) out.push(`applied_adjustments changed: ${a.adjustments} -> ${b.adjustments}`);
  for (const k of new Set([...Object.keys(a.redis), ...Object.keys(b.redis)])) {
    if (a.redis[k] !== b.redis[k]) out.push(`redis ${k} changed: ${a.redis[k] ?? '(absent)'} -> ${b.redis[k] ?? '(absent)'}`);
  }
  return out;
}
