/**
 * Issue 11, housekeeping: a cancelled or expired order gives its units back to the customer's
 * per-SKU limit exactly once, even when the process that committed the transition dies before it
 * reaches Redis (migration 0012, purchase/lua/gate-uncount.lua, docs/purchase-path.md).
 *
 * The crash is the gap between two stores: the transition commits in Postgres, then the gateway
 * lowers the count in Redis. Committing a transition with the orders store alone (as a gateway
 * that died right after its commit would have) leaves the release pending; the expiry worker's
 * pass carries it out, once; a Redis rebuild accounts for it and never applies it again.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { Gate } from '../purchase/adapters/gate.ts';
import { ensureEpoch, epochKey } from '../stream-processors/epoch.ts';
import { testConfig, testKafka, unique } from './helpers.ts';
import { startTestProcessor, waitUntil, type TestProcessor } from './processor-helpers.ts';
import { as, purchaseTestConfig, post, purchase } from './purchase-helpers.ts';

const base = testConfig();
const prefix = unique('lim').replaceAll('-', '');
// The worker's own passes would race the assertions on a pending release: one at start only.
const config = purchaseTestConfig(prefix, { PURCHASE_MAX_PER_CUSTOMER: '2', PURCHASE_EXPIRY_INTERVAL_MS: '600000' });
const pool = new pg.Pool({ connectionString: base.pg.url, max: 4 });
const redis = createRedis(base.redis);
const gate = new Gate({ redis, prefix });
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let proc: TestProcessor | undefined;
let gw: GatewayService;

async function stock(units: number): Promise<string> {
  const sku = unique('LIM');
  await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', $2)`, [sku, units]);
  await waitUntil(async () => (await gate.state(sku)).available === units, 20_000, `${sku} in the gate`);
  return sku;
}

async function bought(sku: string, customer: string): Promise<number> {
  return Number((await redis.hget(gate.customerKey(sku), customer)) ?? 0);
}

async function pending(orderId: string): Promise<boolean> {
  return (await pool.query(`SELECT 1 FROM customer_limit_releases WHERE order_id = $1`, [orderId])).rowCount === 1;
}

async function place(sku: string, customer: string, qty: number): Promise<string> {
  const r = await purchase(gw.url, unique('k'), customer, [{ sku, qty }]);
  expect(r.status).toBe(201);
  return String(r.body.orderId);
}

beforeAll(async () => {
  proc = await startTestProcessor({ config: base, kafka: testKafka(base), redis, prefix, groupId: unique('grp'), fromBeginning: false });
  gw = await startGatewayService(config, logger, { port: 0, metricsDefaults: false });
});

afterAll(async () => {
  await gw?.stop();
  await proc?.processor.stop();
  await pool.end();
  redis.disconnect();
});

describe('customer limit release', () => {
  it('a cancel through the API lowers the count at once and leaves nothing pending', async () => {
    const sku = await stock(10);
    const id = await place(sku, 'api', 2);
    expect(await bought(sku, 'api')).toBe(2);
    const r = await post(gw.url, `/v1/orders/${id}/cancel`, {}, await as('api'));
    expect(r.status).toBe(200);
    expect(await bought(sku, 'api')).toBe(0);
    expect(await pending(id)).toBe(false);
    expect(await gate.releaseLimit(id, 'api', [{ sku, qty: 2 }]).then(() => bought(sku, 'api'))).toBe(0);
  });

  it('a process that died between the commit and Redis: the release is pending, the worker carries it out once', async () => {
    const sku = await stock(10);
    const a = await place(sku, 'crash', 2);
    const third = await purchase(gw.url, unique('k'), 'crash', [{ sku, qty: 1 }]);
    expect(third.body).toMatchObject({ error: 'customer_limit' });

    // The transition commits; the step after the commit never runs.
    const t = await gw.purchases.store.transition(a, 'cancelled');
    expect(t.ok).toBe(true);
    expect(await pending(a)).toBe(true);
    expect(await bought(sku, 'crash')).toBe(2);

    expect(await gw.purchases.releasePending(0)).toBeGreaterThanOrEqual(1);
    expect(await pending(a)).toBe(false);
    expect(await bought(sku, 'crash')).toBe(0);

    // Carried out again (a retry whose first outcome was unknown): no effect on a new purchase's count.
    await place(sku, 'crash', 1);
    await gate.releaseLimit(a, 'crash', [{ sku, qty: 2 }]);
    expect(await bought(sku, 'crash')).toBe(1);
  });

  it('Redis rebuilt from Postgres while a release is pending: the counts come from the orders and the release is never applied again', async () => {
    const sku = await stock(10);
    const keep = await place(sku, 'rebuilt', 1);
    const gone = await place(sku, 'rebuilt', 1);
    expect(await bought(sku, 'rebuilt')).toBe(2);
    expect((await gw.purchases.store.transition(gone, 'cancelled')).ok).toBe(true);
    expect(await pending(gone)).toBe(true);

    // The counts are lost with the epoch (as after a Redis data loss), then rebuilt.
    await redis.del(gate.customerKey(sku), epochKey(prefix));
    const outcome = await ensureEpoch({ redis, pool, prefix, feedMaxLen: 10_000, customerTtlS: 3600 });
    expect(outcome).toBe('rebuilt');
    expect(await bought(sku, 'rebuilt')).toBe(1);
    expect(await pending(gone)).toBe(false);

    // A late carry-out of the release (the gateway that committed it) changes nothing.
    await gate.releaseLimit(gone, 'rebuilt', [{ sku, qty: 1 }]);
    expect(await bought(sku, 'rebuilt')).toBe(1);
    expect(await gw.purchases.releasePending(0)).toBe(0);
    expect(await bought(sku, 'rebuilt')).toBe(1);
    expect(keep).not.toBe(gone);
  });
});
