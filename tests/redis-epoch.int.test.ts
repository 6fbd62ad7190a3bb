/**
 * Redis losing its data (issue 11, item 3): a Redis without the epoch key refuses every purchase
 * (503 `rebuilding`, Retry-After) until the views and the customer-limit counts are rebuilt from
 * Postgres; afterwards the gate sells exactly what Postgres still has, never more. Losing the data
 * is simulated by deleting every key of the test's private prefix (what a fresh instance looks
 * like to that prefix).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { Gate } from '../purchase/adapters/gate.ts';
import { ensureEpoch, epochKey, watchEpoch } from '../stream-processors/epoch.ts';
import { unique } from './helpers.ts';
import { IDENTITY_ENV, purchase } from './purchase-helpers.ts';
import { waitUntil } from './processor-helpers.ts';

const prefix = unique('epoch').replaceAll('-', '');
const config = loadConfig({
  ...process.env,
  ...IDENTITY_ENV, // buyers present customer tokens (tests/purchase-helpers.ts)
  REDIS_PREFIX: prefix,
  PURCHASE_RATE_CUSTOMER_PER_SEC: '0',
  PURCHASE_RATE_ADDRESS_PER_SEC: '0',
  PURCHASE_MAX_PER_CUSTOMER: '3',
  PURCHASE_EXPIRY_INTERVAL_MS: '0',
});
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const redis = createRedis(config.redis);
const gate = new Gate({ redis, prefix });
const sku = unique('EPOCH');
const deps = { redis, pool, prefix, feedMaxLen: 10_000, customerTtlS: 3600 };
let gw: GatewayService;
let base: string;

/** Redis "loses its data": every key of this test's prefix goes. */
async function loseData(): Promise<void> {
  // At once, as a real loss is (a fresh instance has nothing): one script, so a rebuild running
  // meanwhile sees either all of the prefix or none of it, never half.
  await redis.eval(
    "local c = '0' repeat local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000) c = r[1] for _, k in ipairs(r[2]) do redis.call('DEL', k) end until c == '0' return 1",
    0,
    `${prefix}:*`,
  );
}

async function pgRow(): Promise<{ on_hand: number; reserved: number }> {
  const { rows } = await pool.query<{ on_hand: number; reserved: number }>(`SELECT on_hand, reserved FROM stock_levels WHERE sku = $1`, [sku]);
  return rows[0]!;
}

beforeAll(async () => {
  await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 5)`, [sku]);
  gw = await startGatewayService(config, createLogger({ level: 'silent' }), { port: 0, metricsDefaults: false });
  base = gw.url;
});

afterAll(async () => {
  await gw?.stop();
  await loseData();
  await pool.end();
  redis.disconnect();
});

describe('Redis without its epoch (data lost)', () => {
  it('refuses every purchase with 503 rebuilding and Retry-After, reserving nothing', async () => {
    const r = await purchase(base, `${prefix}-k0`, 'c1', [{ sku, qty: 1 }]);
    expect(r.status).toBe(503);
    expect(r.body.error).toBe('rebuilding');
    expect(r.headers['retry-after']).toBe('1');
    expect((await gate.state(sku)).inflight).toBe(0);
    expect((await pgRow()).reserved).toBe(0);
  });

  it('is rebuilt from Postgres once, after which the gate sells again', async () => {
    expect(await ensureEpoch(deps)).toBe('rebuilt');
    expect(await ensureEpoch(deps)).toBe('present');
    expect((await gate.state(sku)).available).toBe(5);
    expect((await purchase(base, `${prefix}-k1`, 'c1', [{ sku, qty: 2 }])).status).toBe(201);
    expect((await purchase(base, `${prefix}-k2`, 'c1', [{ sku, qty: 1 }])).status).toBe(201);
  });

  it('after a loss with orders committed: 503 until rebuilt, then exactly what Postgres has left, and the customer limit kept', async () => {
    await loseData();
    expect((await purchase(base, `${prefix}-k3`, 'c2', [{ sku, qty: 1 }])).status).toBe(503);
    expect(await ensureEpoch(deps)).toBe('rebuilt');
    expect((await gate.state(sku)).available).toBe(2); // 5 on hand, 3 reserved by c1's orders
    // c1 bought 3 before the loss: the limit (3) still holds.
    const limited = await purchase(base, `${prefix}-k4`, 'c1', [{ sku, qty: 1 }]);
    expect([limited.status, limited.body.error]).toEqual([409, 'customer_limit']);
    const tooMany = await purchase(base, `${prefix}-k5`, 'c2', [{ sku, qty: 3 }]);
    expect([tooMany.status, tooMany.body.error]).toEqual([409, 'sold_out']);
    expect((await purchase(base, `${prefix}-k6`, 'c2', [{ sku, qty: 2 }])).status).toBe(201);
    const last = await purchase(base, `${prefix}-k7`, 'c3', [{ sku, qty: 1 }]);
    expect([last.status, last.body.error]).toEqual([409, 'sold_out']);
    const row = await pgRow();
    expect(row).toEqual({ on_hand: 5, reserved: 5 });
  });

  it('a replay of a key whose record was lost returns the order Postgres has, not a second one', async () => {
    await loseData();
    await ensureEpoch(deps);
    const again = await purchase(base, `${prefix}-k6`, 'c2', [{ sku, qty: 2 }]);
    expect(again.status).not.toBe(500);
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM orders WHERE idempotency_key = $1`, [`${prefix}-k6`]);
    expect(Number(rows[0]!.n)).toBe(1);
    expect((await pgRow()).reserved).toBe(5);
  });

  it('a loss during the rebuild leaves the epoch unset, and the next check rebuilds', async () => {
    await loseData();
    const lock = `${prefix}:epoch:lock`;
    const running = ensureEpoch(deps);
    // The rebuild holds its lock while it reads every row of Postgres; the data goes again then.
    await waitUntil(async () => (await redis.exists(lock)) === 1, 10_000, 'the rebuild to hold its lock');
    await loseData();
    expect(await running).toBe('interrupted');
    expect(await redis.exists(epochKey(prefix))).toBe(0); // nothing half-built is declared complete
    expect(await ensureEpoch(deps)).toBe('rebuilt');
    expect((await gate.state(sku)).viewAvailable).not.toBeNull();
  });

  it('the processor watch notices a loss by itself and rebuilds', async () => {
    const stop = watchEpoch({ ...deps, intervalMs: 100 });
    try {
      await waitUntil(async () => (await redis.exists(epochKey(prefix))) === 1, 30_000, 'the epoch at start');
      await loseData();
      await sleep(50);
      await waitUntil(async () => (await redis.exists(epochKey(prefix))) === 1 && (await gate.state(sku)).viewAvailable === 0, 60_000, 'the epoch again, views rebuilt');
    } finally {
      await stop();
    }
  });
});
