/**
 * The Redis epoch: detects that Redis lost its data and restores what the platform derives from
 * Postgres before the purchase gate sells again (issue 11, docs/reliability.md "Redis loses its
 * data").
 *
 * The epoch markers `<prefix>:{<slot tag>}:epoch` (one per Redis Cluster slot, one in all on a
 * single server: lib/contracts/redis-keys.ts) are written only here, after a full rebuild from
 * Postgres. Redis — or one cluster node — restarted without its data (AOF gone, a fresh
 * instance, a failover to an empty replica) has lost the markers of its slots with the rest, and
 * the gate script refuses every purchase of a SKU whose slot has no marker (503 `rebuilding` with
 * Retry-After), so no decision is ever taken on an empty or half-built view. The processor
 * notices the missing key (on every reconnect and every `intervalMs`), and one processor (a lock
 * key) rebuilds:
 *   1. the views of every SKU from Postgres (rebuildViews: version-guarded, so CDC may keep
 *      flowing; every SKU is announced on the feed, so subscribers get the fresh state);
 *   2. the per-customer limit counts from the orders that hold units (reserved, confirmed);
 *   3. then sets the markers, each only while the rebuild's per-slot token (written into every
 *      slot when it started) is still there: a slot that lost its data again meanwhile lost its
 *      token too and stays unmarked (`interrupted`; the next check rebuilds).
 * The gate's in-flight terms start at 0: holds accepted before the loss are either committed in
 * Postgres (then the rebuilt view, or the CDC event still to come, counts them) or will never
 * commit (then nothing counts them). Their later settle/release calls find no hold record and do
 * nothing. Postgres' guarded write-back remains the last line: nothing is ever oversold.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { execEach, isCluster, type RedisClient } from '../lib/redis.ts';
import { redisKeys, type RedisKeys } from '../lib/contracts/redis-keys.ts';
import { errorMessage } from '../lib/errors.ts';
import { inTransaction } from '../lib/pg.ts';
import type { Logger } from '../lib/logger.ts';
import { RedisViews, type ChannelSource } from './adapters/redis-views.ts';
import { rebuildViews } from './views-maintenance.ts';

/** The epoch marker of one server (slot 0), or of `slot` of a cluster. */
export function epochKey(prefix: string, slot?: number): string {
  return slot === undefined ? redisKeys(prefix).epoch(0) : redisKeys(prefix, { cluster: true }).epoch(slot);
}

function keysFor(redis: RedisClient, prefix: string): RedisKeys {
  return redisKeys(prefix, { cluster: isCluster(redis) });
}

function allSlots(keys: RedisKeys): number[] {
  return Array.from({ length: keys.slots }, (_, i) => i);
}

async function execAll(redis: RedisClient, slots: number[], keyOf: (slot: number) => string, queue: Parameters<typeof execEach<number>>[3]): Promise<unknown[]> {
  return (await execEach(redis, slots, keyOf, queue)).map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}

/** Marks Redis as complete for `prefix` (after a rebuild, or for a prefix that starts empty on purpose, as tests do). */
export async function markEpoch(redis: RedisClient, prefix: string, info: Record<string, unknown> = {}): Promise<void> {
  const keys = keysFor(redis, prefix);
  const text = JSON.stringify({ at: new Date().toISOString(), ...info });
  await execAll(redis, allSlots(keys), keys.epoch, (p, slot) => p.set(keys.epoch(slot), text));
}

/** How many slots one check reads besides one per master (a full pass over 16384 every 32 checks). */
const CHECK_SLOTS_PER_PASS = 512;
const checkCursor = new WeakMap<object, number>();

/**
 * Whether every slot still has its marker, as far as this check looks: on one server its one
 * marker; on a cluster one slot of every master (a node that lost its data lost all of its
 * markers) and the next CHECK_SLOTS_PER_PASS slots round robin (any other gap).
 */
async function epochPresent(redis: RedisClient, keys: RedisKeys): Promise<boolean> {
  let slots: number[];
  if (!isCluster(redis)) slots = [0];
  else {
    const table = (redis as unknown as { slots: string[][] }).slots;
    const firstOfNode = new Map<string, number>();
    table.forEach((nodes, slot) => {
      const master = nodes?.[0];
      if (master !== undefined && !firstOfNode.has(master)) firstOfNode.set(master, slot);
    });
    const from = checkCursor.get(redis) ?? 0;
    checkCursor.set(redis, (from + CHECK_SLOTS_PER_PASS) % keys.slots);
    slots = [...new Set([...firstOfNode.values(), ...Array.from({ length: CHECK_SLOTS_PER_PASS }, (_, i) => (from + i) % keys.slots)])];
  }
  const replies = await execAll(redis, slots, keys.epoch, (p, slot) => p.exists(keys.epoch(slot)));
  return replies.every((n) => Number(n) === 1);
}

/**
 * `interrupted`: RedisClient lost its data again while the rebuild ran (our lock went with it), so what
 * was written is incomplete and the epoch was not set; the next check rebuilds again.
 */
export type EpochOutcome = 'present' | 'rebuilt' | 'busy' | 'interrupted';

/** Sets a slot's marker only while the rebuild's token is still in the slot: a loss during the rebuild took the token too. */
const MARK_IF_PENDING =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2]) redis.call('DEL', KEYS[1]) return 1 end return 0";

/**
 * The customer-limit counts (`<p>:{sku}:gate:cust`) from the orders that hold units, and the
 * limit releases still pending (customer_limit_releases, migration 0012) read in the same
 * snapshot: those orders are already left out of the counts, so their releases are marked as
 * carried out (the marker gate-uncount.lua checks) and forgotten, never applied a second time.
 */
async function restoreCustomerCounts(deps: { redis: RedisClient; pool: pg.Pool; prefix: string; ttlS: number }): Promise<number> {
  const { rows, pending } = await inTransaction(
    deps.pool,
    async (c) => ({
      rows: (
        await c.query<{ sku: string; customer_id: string; qty: string }>(
          `SELECT l.sku, o.customer_id, sum(l.qty) AS qty FROM orders o JOIN order_lines l ON l.order_id = o.id
            WHERE o.status IN ('reserved', 'confirmed') GROUP BY l.sku, o.customer_id`,
        )
      ).rows,
      pending: (await c.query<{ order_id: string; items: Array<{ sku: string; qty: number }> }>(`SELECT order_id, items FROM customer_limit_releases`)).rows,
    }),
    { begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' },
  );
  const keys = keysFor(deps.redis, deps.prefix);
  for (let i = 0; i < rows.length; i += 1000) {
    await execEach(deps.redis, rows.slice(i, i + 1000), (r) => keys.gateCustomers(r.sku), (p, r) => {
      const key = keys.gateCustomers(r.sku);
      p.hset(key, r.customer_id, r.qty);
      p.expire(key, deps.ttlS);
    });
  }
  if (pending.length > 0) {
    const markers = pending.flatMap((r) => r.items.map((i) => keys.limitReleased(i.sku, r.order_id)));
    await execAll(deps.redis, markers.map((_, i) => i), (i) => markers[i]!, (p, i) => p.set(markers[i]!, '1', 'EX', Math.max(86_400, deps.ttlS)));
    await deps.pool.query(`DELETE FROM customer_limit_releases WHERE order_id = ANY($1::uuid[])`, [pending.map((r) => r.order_id)]);
  }
  return rows.length;
}

/**
 * Rebuilds and sets the epoch when it is missing. `busy`: another processor is rebuilding (its
 * lock expires after `lockMs` should it die).
 */
export async function ensureEpoch(deps: {
  redis: RedisClient;
  pool: pg.Pool;
  prefix: string;
  feedMaxLen: number;
  customerTtlS: number;
  log?: Logger;
  lockMs?: number;
  /** The sales-channel configuration the rebuilt views' channel figures are computed with. */
  channels?: ChannelSource;
}): Promise<EpochOutcome> {
  const keys = keysFor(deps.redis, deps.prefix);
  const key = keys.epoch(0);
  if (await epochPresent(deps.redis, keys)) return 'present';
  const lock = keys.epochLock;
  const token = randomUUID();
  const lockMs = deps.lockMs ?? 120_000;
  if ((await deps.redis.set(lock, token, 'PX', lockMs, 'NX')) !== 'OK') return 'busy';
  try {
    deps.log?.warn({ key }, 'Redis has no epoch (data lost or first start): rebuilding views and gate state from Postgres; purchases wait');
    const slots = allSlots(keys);
    await execAll(deps.redis, slots, keys.epochPending, (p, slot) => p.set(keys.epochPending(slot), token, 'PX', lockMs));
    const started = Date.now();
    const views = new RedisViews({ redis: deps.redis, prefix: deps.prefix, ...(deps.channels ? { channels: deps.channels } : {}) });
    const res = await rebuildViews({ pool: deps.pool, views, feedMaxLen: deps.feedMaxLen });
    const counts = await restoreCustomerCounts({ redis: deps.redis, pool: deps.pool, prefix: deps.prefix, ttlS: deps.customerTtlS });
    const info = JSON.stringify({ at: new Date().toISOString(), rows: res.rows, customerCounts: counts });
    const marked = await execAll(deps.redis, slots, keys.epoch, (p, slot) => p.eval(MARK_IF_PENDING, 2, keys.epochPending(slot), keys.epoch(slot), token, info));
    if (!marked.every((m) => Number(m) === 1)) {
      deps.log?.warn({ key }, 'Redis lost its data again during the rebuild: the epoch is not set, the next check rebuilds');
      return 'interrupted';
    }
    deps.log?.warn({ rows: res.rows, customerCounts: counts, ms: Date.now() - started }, 'Redis rebuilt from Postgres; epoch set, the gate sells again');
    return 'rebuilt';
  } finally {
    // Only our own lock: compare and delete in one step.
    await deps.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, lock, token).catch(() => undefined);
  }
}

/**
 * Keeps the epoch: checks at once, on every Redis reconnect, and every `intervalMs`. Returns a
 * stop function. Failures (RedisClient or Postgres down) are logged and retried on the next check.
 */
export function watchEpoch(deps: Parameters<typeof ensureEpoch>[0] & { intervalMs: number; onRebuilt?: () => void }): () => Promise<void> {
  let stopped = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    if (stopped || running) return;
    running = ensureEpoch(deps)
      .then((o) => {
        if (o === 'rebuilt') deps.onRebuilt?.();
      })
      .catch((err: unknown) => deps.log?.warn({ err: errorMessage(err) }, 'epoch check failed; retrying'))
      .finally(() => {
        running = undefined;
      });
  };
  const onReady = () => check();
  deps.redis.on('ready', onReady);
  const tick = () => {
    check();
    if (!stopped) timer = setTimeout(tick, deps.intervalMs);
  };
  tick();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    deps.redis.off('ready', onReady);
    await running;
  };
}
