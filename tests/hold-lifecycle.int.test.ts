/**
 * The hold lifecycle on the real pipeline (docs/purchase-path.md, "Hold lifecycle"): extending a
 * hold (bounded by PURCHASE_HOLD_MAX_LIFETIME_S), releasing it early (the cancel) and changing its
 * quantities through the gate, against real Postgres, Redis, Kafka and Debezium. Races with the
 * expiry worker are run many times; after each the order's status, its outbox rows, the stock rows
 * and the gate must tell the same story. The gateway runs no expiry worker of its own: the tests
 * run its passes (`expireOnce`) exactly when they race them.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { Gate, scopedIdempotencyKey } from '../purchase/adapters/gate.ts';
import { HoldsStore } from '../purchase/adapters/holds-pg.ts';
import { OrdersStore } from '../purchase/adapters/orders-pg.ts';
import { caseRng, mutateJson, randomJson } from './fuzz/rng.ts';
import { cleanUp, testConfig, testKafka, unique, watchTopic, type TopicWatcher } from './helpers.ts';
import { startTestProcessor, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';
import { as, gateSettled, purchaseTestConfig, insertStock, patch, post, purchase, reservedByOrders, skuTruth, type HttpReply } from './purchase-helpers.ts';

const base = testConfig();
const prefix = unique('hold').replaceAll('-', '');
const MAX_LIFETIME_S = 1800;
const config = purchaseTestConfig(prefix, { PURCHASE_MAX_PER_CUSTOMER: '6', PURCHASE_EXPIRY_INTERVAL_MS: '0', PURCHASE_HOLD_MAX_LIFETIME_S: String(MAX_LIFETIME_S) });
const pool = new pg.Pool({ connectionString: base.pg.url, max: 6 });
const redis = createRedis(base.redis);
const gate = new Gate({ redis, prefix });
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const payments = { Authorization: 'Bearer dev-payments-key' };
const support = { Authorization: 'Bearer dev-support-key' };
let proc: TestProcessor;
let gw: GatewayService;
let events: TopicWatcher;
const created: string[] = [];

async function stock(perLocation: number[]): Promise<string> {
  const sku = unique(`${prefix}-S`);
  created.push(sku);
  await insertStock(pool, gate, sku, perLocation);
  return sku;
}

/** A hold of `customer` (201 asserted); its order id. */
async function hold(customer: string, items: Array<{ sku: string; qty: number }>): Promise<string> {
  const r = await purchase(gw.url, unique('k'), customer, items);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return String(r.body.orderId);
}

interface OrderRow {
  status: string;
  expiresAt: number;
  createdAt: number;
  updatedAt: number;
  lines: Record<string, number>;
  reservations: Record<string, number>;
}

/** The order as Postgres has it: status, times (ms), line quantities and reservations by `sku@location`. */
async function orderRow(id: string): Promise<OrderRow> {
  const o = await pool.query<{ status: string; expires_at: Date; created_at: Date; updated_at: Date }>(`SELECT status, expires_at, created_at, updated_at FROM orders WHERE id = $1`, [id]);
  const l = await pool.query<{ sku: string; qty: number }>(`SELECT sku, qty FROM order_lines WHERE order_id = $1`, [id]);
  const r = await pool.query<{ sku: string; location_id: string; qty: number }>(`SELECT sku, location_id, qty FROM reservations WHERE order_id = $1`, [id]);
  const row = o.rows[0]!;
  return {
    status: row.status,
    expiresAt: row.expires_at.getTime(),
    createdAt: row.created_at.getTime(),
    updatedAt: row.updated_at.getTime(),
    lines: Object.fromEntries(l.rows.map((x) => [x.sku, x.qty])),
    reservations: Object.fromEntries(r.rows.map((x) => [`${x.sku}@${x.location_id}`, x.qty])),
  };
}

/** The committed outbox rows of an order by type (the events Debezium publishes are exactly these). */
async function outboxTypes(id: string): Promise<Record<string, number>> {
  const r = await pool.query<{ type: string; n: string }>(`SELECT type, count(*) AS n FROM outbox WHERE aggregateid = $1 GROUP BY type`, [id]);
  return Object.fromEntries(r.rows.map((x) => [x.type, Number(x.n)]));
}

/** Postgres' reserved units of a SKU equal the units of its reserved orders, and never exceed on hand. */
async function expectReservedMatchesOrders(sku: string): Promise<void> {
  const truth = await skuTruth(pool, sku);
  expect(truth.reserved).toBe((await reservedByOrders(pool, sku)).units);
  expect(truth.reserved).toBeLessThanOrEqual(truth.onHand);
}

/** Once CDC caught up, the gate's availability equals what Postgres may still sell. */
async function expectGateMatchesPostgres(sku: string): Promise<void> {
  await waitUntil(async () => {
    const s = await gateSettled(gate, sku);
    return s.available === (await skuTruth(pool, sku)).sellable;
  }, 20_000, `the gate of ${sku} to equal Postgres`);
}

function expectRefused(r: HttpReply, status: number, error: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.error).toBe(error);
}

beforeAll(async () => {
  proc = await startTestProcessor({ config: base, kafka: testKafka(base), redis, prefix, groupId: unique('grp'), fromBeginning: false });
  await waitProcessorLive(pool, proc.views, `${prefix}-probe`);
  events = await watchTopic(testKafka(base), 'orders.events');
  gw = await startGatewayService(config, logger, { port: 0, metricsDefaults: false });
});

afterAll(async () => {
  await gw?.stop();
  await events?.stop();
  await proc?.processor.stop();
  await pool.end();
  redis.disconnect();
  await cleanUp(base, { redisPrefixes: [prefix], skus: created, skuPrefixes: [prefix] });
});

describe('extend', () => {
  it('moves the expiry of a reserved hold (OrderExtended on orders.events), after which it can be confirmed', async () => {
    const sku = await stock([5]);
    const id = await hold('ext-a', [{ sku, qty: 2 }]);
    const before = await orderRow(id);
    const r = await post(gw.url, `/v1/orders/${id}/extend`, { seconds: 1200 }, await as('ext-a'));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ orderId: id, status: 'reserved', extended: true, clamped: false });
    const after = await orderRow(id);
    expect(after.expiresAt).toBe(Date.parse(String(r.body.expiresAt)));
    expect(after.expiresAt).toBeGreaterThan(before.expiresAt);
    expect(after.expiresAt - Date.now()).toBeGreaterThan(1100_000);
    expect(r.body.maxExpiresAt).toBe(new Date(after.createdAt + MAX_LIFETIME_S * 1000).toISOString());
    const ev = await events.waitFor((m) => m.key === id && m.headers.eventType === 'OrderExtended');
    expect(JSON.parse(ev.value!)).toMatchObject({ type: 'OrderExtended', orderId: id, status: 'reserved', expiresAt: r.body.expiresAt, items: [{ sku, qty: 2 }] });
    // The payment service (orders:confirm) may extend too; support (orders:cancel only) may not.
    expect((await post(gw.url, `/v1/orders/${id}/extend`, { seconds: 1300 }, payments)).status).toBe(200);
    expectRefused(await post(gw.url, `/v1/orders/${id}/extend`, { seconds: 1400 }, support), 404, 'unknown_order');
    const c = await post(gw.url, `/v1/orders/${id}/confirm`, {}, payments);
    expect(c.body).toMatchObject({ orderId: id, status: 'confirmed' });
    expect(await skuTruth(pool, sku)).toEqual({ onHand: 3, reserved: 0, sellable: 3 });
  });

  it('is clamped to the maximum lifetime; once there, a further extend is refused and changes nothing', async () => {
    const sku = await stock([5]);
    const id = await hold('ext-b', [{ sku, qty: 1 }]);
    const r = await post(gw.url, `/v1/orders/${id}/extend`, { seconds: 86_400 }, await as('ext-b'));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ extended: true, clamped: true });
    const row = await orderRow(id);
    expect(row.expiresAt).toBe(row.createdAt + MAX_LIFETIME_S * 1000);
    const again = await post(gw.url, `/v1/orders/${id}/extend`, { seconds: 86_400 }, await as('ext-b'));
    expectRefused(again, 409, 'hold_lifetime_exceeded');
    expect(again.body.details).toMatchObject({ maxExpiresAt: new Date(row.expiresAt).toISOString() });
    // An extend that would end earlier than the hold already does changes nothing either (200, no event).
    const shorter = await post(gw.url, `/v1/orders/${id}/extend`, { seconds: 60 }, await as('ext-b'));
    expect(shorter.body).toMatchObject({ extended: false, expiresAt: new Date(row.expiresAt).toISOString() });
    expect(await orderRow(id)).toEqual(row);
    expect(await outboxTypes(id)).toEqual({ OrderPlaced: 1, OrderExtended: 1 });
  });

  it('refuses an expired, confirmed, cancelled or someone else\'s hold, and bad bodies, changing nothing', async () => {
    const sku = await stock([10]);
    const mine = await hold('ext-c', [{ sku, qty: 1 }]);
    const confirmed = await hold('ext-c', [{ sku, qty: 1 }]);
    const cancelled = await hold('ext-c', [{ sku, qty: 1 }]);
    const expired = await hold('ext-c', [{ sku, qty: 1 }]);
    expect((await post(gw.url, `/v1/orders/${confirmed}/confirm`, {}, payments)).status).toBe(200);
    expect((await post(gw.url, `/v1/orders/${cancelled}/cancel`, {}, await as('ext-c'))).status).toBe(200);
    // Past its expiry, not yet expired by the worker: refused as expired, and left to the worker.
    await pool.query(`UPDATE orders SET expires_at = clock_timestamp() - interval '1 second' WHERE id = $1`, [expired]);
    const rows = new Map(await Promise.all([mine, confirmed, cancelled, expired].map(async (id) => [id, await orderRow(id)] as const)));
    const me = await as('ext-c');
    expectRefused(await post(gw.url, `/v1/orders/${mine}/extend`, { seconds: 600 }, await as('ext-mallory')), 404, 'unknown_order');
    const c = await post(gw.url, `/v1/orders/${confirmed}/extend`, { seconds: 600 }, me);
    expectRefused(c, 409, 'invalid_state');
    expect(c.body.details).toMatchObject({ status: 'confirmed' });
    expect((await post(gw.url, `/v1/orders/${cancelled}/extend`, { seconds: 600 }, me)).body).toMatchObject({ error: 'invalid_state', details: { status: 'cancelled' } });
    expect((await post(gw.url, `/v1/orders/${expired}/extend`, { seconds: 600 }, me)).body).toMatchObject({ error: 'invalid_state', details: { status: 'expired' } });
    expectRefused(await post(gw.url, `/v1/orders/${mine}/extend`, { seconds: 0 }, me), 400, 'invalid_body');
    expectRefused(await post(gw.url, `/v1/orders/${mine}/extend`, { seconds: 60, customerId: 'ext-c' }, await as('ext-mallory')), 400, 'invalid_body');
    expectRefused(await post(gw.url, `/v1/orders/${mine}/extend`, '{"seconds":', me), 400, 'invalid_json');
    expectRefused(await post(gw.url, `/v1/orders/${mine}/extend`, { seconds: 60 }), 401, 'unauthorized');
    expectRefused(await post(gw.url, '/v1/orders/not-a-uuid/extend', { seconds: 60 }, me), 400, 'invalid_order_id');
    for (const [id, row] of rows) expect(await orderRow(id)).toEqual(row);
    for (const id of rows.keys()) expect((await outboxTypes(id)).OrderExtended).toBeUndefined();
    // The worker still expires the overdue hold; extending it afterwards is refused the same way.
    await gw.purchases.expireOnce();
    expect((await orderRow(expired)).status).toBe('expired');
    expect((await post(gw.url, `/v1/orders/${expired}/extend`, { seconds: 600 }, me)).body).toMatchObject({ error: 'invalid_state', details: { status: 'expired' } });
    await expectReservedMatchesOrders(sku);
  });
});

/**
 * Races `act` against the expiry worker on holds that fall due while both run: each round a hold
 * becomes due within a few ms, and the action and worker passes start at random moments around
 * it. Returns each hold with the action's answer.
 */
async function raceExpiry(sku: string, customer: string, rounds: number, act: (id: string, auth: Record<string, string>) => Promise<HttpReply>): Promise<Array<{ id: string; reply: HttpReply }>> {
  const out: Array<{ id: string; reply: HttpReply }> = [];
  for (let i = 0; i < rounds; i++) {
    // A customer per round: holds that survive must not add up to the per-customer limit.
    const who = `${customer}-${i}`;
    const id = await hold(who, [{ sku, qty: 1 }]);
    const auth = await as(who);
    // Due from at once to ~60 ms from now: the action (an HTTP call, some ms) lands before,
    // around and after that moment, while the worker passes run back to back.
    const dueInMs = (i % 8) * 8;
    await pool.query(`UPDATE orders SET expires_at = clock_timestamp() + make_interval(secs => $2::double precision / 1000) WHERE id = $1`, [id, dueInMs]);
    const until = Date.now() + 80;
    const worker = (async () => {
      while (Date.now() < until) await gw.purchases.expireOnce();
    })();
    const [reply] = await Promise.all([act(id, auth), worker]);
    await gw.purchases.expireOnce(); // whatever the action left due is expired now
    out.push({ id, reply });
  }
  return out;
}

describe('races with the expiry worker', () => {
  it('extend vs expiry: exactly one wins each round; status, outbox, stock and gate agree', async () => {
    const rounds = 40;
    const sku = await stock([rounds]);
    const results = await raceExpiry(sku, 'race-ext', rounds, (id, auth) => post(gw.url, `/v1/orders/${id}/extend`, { seconds: 600 }, auth));
    let extended = 0;
    for (const { id, reply } of results) {
      const row = await orderRow(id);
      const types = await outboxTypes(id);
      if (reply.status === 200) {
        extended++;
        expect(row.status).toBe('reserved');
        expect(row.expiresAt - Date.now()).toBeGreaterThan(500_000);
        expect(types).toEqual({ OrderPlaced: 1, OrderExtended: 1 });
      } else {
        expect(reply.status, JSON.stringify(reply.body)).toBe(409);
        expect(reply.body).toMatchObject({ error: 'invalid_state', details: { status: 'expired' } });
        expect(row.status).toBe('expired');
        expect(types).toEqual({ OrderPlaced: 1, ReservationExpired: 1 });
      }
    }
    logger.info({ extended, expired: rounds - extended }, 'extend vs expiry');
    await expectReservedMatchesOrders(sku);
    expect((await skuTruth(pool, sku)).reserved).toBe(extended);
    await expectGateMatchesPostgres(sku);
    // The last event of every order on the topic matches its final status.
    for (const { id, reply } of results) {
      await events.waitFor((m) => m.key === id && m.headers.eventType === (reply.status === 200 ? 'OrderExtended' : 'ReservationExpired'));
    }
  });

  it('release (cancel) vs expiry: exactly one terminal transition per hold; the units come back once', async () => {
    const rounds = 40;
    const sku = await stock([rounds]);
    const results = await raceExpiry(sku, 'race-rel', rounds, (id, auth) => post(gw.url, `/v1/orders/${id}/cancel`, {}, auth));
    logger.info({ cancelled: results.filter((x) => x.reply.status === 200).length, rounds }, 'release vs expiry');
    for (const { id, reply } of results) {
      const row = await orderRow(id);
      const types = await outboxTypes(id);
      if (reply.status === 200) {
        expect(row.status).toBe('cancelled');
        expect(types).toEqual({ OrderPlaced: 1, OrderCancelled: 1 });
      } else {
        expect(reply.body).toMatchObject({ error: 'invalid_state', details: { status: 'expired' } });
        expect(row.status).toBe('expired');
        expect(types).toEqual({ OrderPlaced: 1, ReservationExpired: 1 });
      }
    }
    expect(await skuTruth(pool, sku)).toEqual({ onHand: rounds, reserved: 0, sellable: rounds });
    await expectGateMatchesPostgres(sku);
    expect((await gate.state(sku)).available).toBe(rounds);
  });
});

describe('change quantities', () => {
  it('up and down: Postgres reserved, the allocation, the gate and OrderChanged agree; a retry changes nothing', async () => {
    const sku = await stock([6, 4]);
    const other = await stock([3]);
    const id = await hold('chg-a', [{ sku, qty: 2 }, { sku: other, qty: 1 }]);
    const me = await as('chg-a');
    expect((await orderRow(id)).reservations).toEqual({ [`${sku}@WH-1`]: 2, [`${other}@WH-1`]: 1 });
    // Up by 3: WH-1 and WH-2 both have 4 sellable, the tie goes to WH-1.
    const up = await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 5 }] }, me);
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect(up.body.items).toEqual(
      expect.arrayContaining([
        { sku, qty: 5, allocations: [{ locationId: 'WH-1', qty: 5 }] },
        { sku: other, qty: 1, allocations: [{ locationId: 'WH-1', qty: 1 }] },
      ]),
    );
    expect(up.body.items).toHaveLength(2);
    expect((await orderRow(id)).lines).toEqual({ [sku]: 5, [other]: 1 });
    expect(await skuTruth(pool, sku)).toEqual({ onHand: 10, reserved: 5, sellable: 5 });
    const changedUp = await events.waitFor((m) => m.key === id && m.headers.eventType === 'OrderChanged');
    expect(JSON.parse(changedUp.value!)).toMatchObject({ type: 'OrderChanged', orderId: id, status: 'reserved', changes: [{ sku, from: 2, to: 5 }] });
    await expectGateMatchesPostgres(sku);
    expect((await gate.state(sku)).available).toBe(5);
    // Down to 1 on one line, the other line removed (qty 0): units back in Postgres and the gate.
    const down = await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 1 }, { sku: other, qty: 0 }] }, me);
    expect(down.status, JSON.stringify(down.body)).toBe(200);
    expect(down.body.items).toEqual([{ sku, qty: 1, allocations: [{ locationId: 'WH-1', qty: 1 }] }]);
    expect(await orderRow(id)).toMatchObject({ lines: { [sku]: 1 }, reservations: { [`${sku}@WH-1`]: 1 } });
    expect(await skuTruth(pool, sku)).toEqual({ onHand: 10, reserved: 1, sellable: 9 });
    expect(await skuTruth(pool, other)).toEqual({ onHand: 3, reserved: 0, sellable: 3 });
    await events.waitFor((m) => m.key === id && m.headers.eventType === 'OrderChanged' && (JSON.parse(m.value!) as { changes: unknown[] }).changes.length === 2);
    // The same target again (a retry): 200 with the same order, nothing written.
    const retry = await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 1 }, { sku: other, qty: 0 }] }, me);
    expect(retry.status).toBe(200);
    expect(retry.body.items).toEqual(down.body.items);
    expect(await outboxTypes(id)).toEqual({ OrderPlaced: 1, OrderChanged: 2 });
    await expectGateMatchesPostgres(sku);
    await expectGateMatchesPostgres(other);
    expect((await gate.state(sku)).available).toBe(9);
    // The decrease gave its units back to the customer's limit (6 per SKU): 5 more fit, 6 do not.
    expectRefused(await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 7 }] }, me), 409, 'customer_limit');
    expect((await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 6 }] }, me)).status).toBe(200);
    await expectReservedMatchesOrders(sku);
    // Confirming takes the changed quantity off the shelf.
    expect((await post(gw.url, `/v1/orders/${id}/confirm`, {}, payments)).status).toBe(200);
    expect(await skuTruth(pool, sku)).toEqual({ onHand: 4, reserved: 0, sellable: 4 });
  });

  it('an increase beyond availability, a new SKU, all lines at 0, someone else\'s or a settled hold: refused, nothing changes', async () => {
    const sku = await stock([3]);
    const spare = await stock([5]);
    const id = await hold('chg-b', [{ sku, qty: 2 }]);
    await hold('chg-b2', [{ sku, qty: 1 }]);
    const done = await hold('chg-b', [{ sku: spare, qty: 1 }]);
    expect((await post(gw.url, `/v1/orders/${done}/cancel`, {}, await as('chg-b'))).status).toBe(200);
    const me = await as('chg-b');
    const row = await orderRow(id);
    const sold = await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 3 }] }, me);
    expectRefused(sold, 409, 'sold_out');
    expect(sold.body.details).toMatchObject({ sku, requested: 1, available: 0 });
    expect((await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku: spare, qty: 1 }] }, me)).body).toMatchObject({ error: 'invalid_body', details: { field: 'items[0].sku' } });
    expect((await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 0 }] }, me)).body).toMatchObject({ error: 'invalid_body', details: { field: 'items' } });
    expectRefused(await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 1 }] }, await as('chg-mallory')), 404, 'unknown_order');
    // A service may not change a customer's quantities, whatever its grants.
    expectRefused(await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 1 }] }, payments), 404, 'unknown_order');
    expect((await patch(gw.url, `/v1/orders/${done}`, { items: [{ sku: spare, qty: 2 }] }, me)).body).toMatchObject({ error: 'invalid_state', details: { status: 'cancelled' } });
    expectRefused(await patch(gw.url, `/v1/orders/${id}`, '{"items":[', me), 400, 'invalid_json');
    expectRefused(await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 1 }] }), 401, 'unauthorized');
    expect(await orderRow(id)).toEqual(row);
    expect(await skuTruth(pool, sku)).toEqual({ onHand: 3, reserved: 3, sellable: 0 });
    expect((await outboxTypes(id)).OrderChanged).toBeUndefined();
    expect((await outboxTypes(done)).OrderChanged).toBeUndefined();
    const g = await gateSettled(gate, sku);
    expect(g.available).toBe(0);
    expect(await gate.check([sku], false)).toMatchObject([{ drift: false }]);
  });

  it('concurrent increases on the last units never oversell; the gate and Postgres agree afterwards', async () => {
    const customers = 12;
    const sku = await stock([customers + 10]);
    const ids = await Promise.all(Array.from({ length: customers }, (_, i) => hold(`chg-c${i}`, [{ sku, qty: 1 }])));
    // Every customer asks for 2 more (10 units left: 5 can have them), each twice at once (a retry).
    const replies = await Promise.all(
      ids.flatMap((id, i) => [0, 1].map(async () => ({ id, r: await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 3 }] }, await as(`chg-c${i}`)) }))),
    );
    for (const { r } of replies) {
      expect([200, 409], JSON.stringify(r.body)).toContain(r.status);
      if (r.status === 409) expect(['sold_out', 'order_changed']).toContain(r.body.error);
    }
    const rows = await Promise.all(ids.map((id) => orderRow(id)));
    const grown = rows.filter((o) => o.lines[sku] === 3).length;
    expect(rows.every((o) => o.lines[sku] === 1 || o.lines[sku] === 3)).toBe(true);
    expect(grown).toBeLessThanOrEqual(5);
    expect(grown).toBeGreaterThan(0);
    // A customer whose quantity is 3 got a 200 (for one of its two requests); no other did.
    for (const [i, id] of ids.entries()) expect(replies.some((x) => x.id === id && x.r.status === 200)).toBe(rows[i]!.lines[sku] === 3);
    await expectReservedMatchesOrders(sku);
    expect((await skuTruth(pool, sku)).reserved).toBe(customers + 2 * grown);
    await expectGateMatchesPostgres(sku);
    expect(await gate.check([sku], false)).toMatchObject([{ drift: false }]);
  });

  it('a change racing the expiry worker: either the change commits and the hold lives, or it expires and nothing changed', async () => {
    const rounds = 20;
    const sku = await stock([3 * rounds]);
    const results = await raceExpiry(sku, 'race-chg', rounds, (id, auth) => patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 2 }] }, auth));
    logger.info({ changed: results.filter((x) => x.reply.status === 200).length, rounds }, 'change vs expiry');
    for (const { id, reply } of results) {
      const row = await orderRow(id);
      const types = await outboxTypes(id);
      if (reply.status === 200) {
        // Committed before the expiry: the worker then expired the changed hold (it was due).
        expect(types).toMatchObject({ OrderPlaced: 1, OrderChanged: 1 });
        expect(row.lines[sku]).toBe(2);
      } else {
        expect(reply.body).toMatchObject({ error: 'invalid_state', details: { status: 'expired' } });
        expect(types.OrderChanged).toBeUndefined();
        expect(row.lines[sku]).toBe(1);
      }
      expect(row.status).toBe('expired');
      expect(types.ReservationExpired).toBe(1);
    }
    expect(await skuTruth(pool, sku)).toEqual({ onHand: 3 * rounds, reserved: 0, sellable: 3 * rounds });
    await expectGateMatchesPostgres(sku);
    expect(await gate.check([sku], false)).toMatchObject([{ drift: false }]);
  });
});

describe('a gateway that dies in the middle of a change', () => {
  it('the reaper releases a change hold whose write-back never ran, and settles one whose write-back committed', async () => {
    const sku = await stock([10]);
    const id = await hold('chg-d', [{ sku, qty: 1 }]);
    const g = gw.purchases.gate;
    const store = new HoldsStore({ pool, orders: new OrdersStore(pool) });
    const reserve = async (changeId: string) => {
      const scoped = scopedIdempotencyKey('chg-d', `change:${changeId}`);
      expect(await g.reserve({ holdId: changeId, idempotencyKey: scoped, hash: changeId, customerId: 'chg-d', address: 'test', items: [{ sku, qty: 2 }], skipRate: true })).toEqual({ kind: 'ok' });
    };
    await gateSettled(gate, sku);
    // A: the gateway took the units in the gate and died before hold_resize.
    const a = randomUUID();
    await reserve(a);
    expect((await gate.state(sku)).inflight).toBe(2);
    expect(await gw.purchases.reapOnce(Date.now() + 120_000)).toMatchObject({ released: 1, settled: 0 });
    expect((await gate.state(sku)).inflight).toBe(0);
    // Its write-back can never commit now: the reaper holds the claim.
    expect(await store.resize({ id: a, orderId: id, lines: [{ sku, from: 1, to: 3 }] })).toEqual({ ok: false, reason: 'exists' });
    expect((await orderRow(id)).lines).toEqual({ [sku]: 1 });
    // B: hold_resize committed, the gateway died before settling the change hold.
    const b = randomUUID();
    await reserve(b);
    expect(await store.resize({ id: b, orderId: id, lines: [{ sku, from: 1, to: 3 }] })).toMatchObject({ ok: true });
    expect(await gw.purchases.reapOnce(Date.now() + 120_000)).toMatchObject({ released: 0, settled: 1 });
    expect((await orderRow(id)).lines).toEqual({ [sku]: 3 });
    await expectReservedMatchesOrders(sku);
    await expectGateMatchesPostgres(sku);
    expect((await gate.state(sku)).available).toBe(7);
    expect(await gate.check([sku], false)).toMatchObject([{ drift: false }]);
  });
});

describe('malformed bodies (fuzz)', () => {
  it('random and mutated bodies to extend and change get a 4xx, never a 5xx, and change nothing', async () => {
    const sku = await stock([10]);
    const id = await hold('fuzz-hold', [{ sku, qty: 2 }]);
    const me = await as('fuzz-hold');
    const row = await orderRow(id);
    const valid = { extend: { seconds: 60 }, change: { items: [{ sku, qty: 3 }] } };
    const statuses = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const r = caseRng(0x401d, i);
      const route = i % 2 === 0 ? 'extend' : 'change';
      const body = r.weighted<() => unknown>([
        [3, () => mutateJson(r, mutateJson(r, valid[route]))],
        [2, () => randomJson(r)],
        [1, () => JSON.stringify(randomJson(r)).slice(0, r.int(0, 40))], // truncated text
      ])();
      // Mutations that happen to be valid are skipped: they would (rightly) change the hold.
      if (body !== null && typeof body === 'object' && JSON.stringify(body) === JSON.stringify(valid[route])) continue;
      const reply =
        route === 'extend'
          ? await post(gw.url, `/v1/orders/${id}/extend`, body, me)
          : await patch(gw.url, `/v1/orders/${id}`, body, me);
      statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
      expect(reply.status, `case ${i} ${route} ${JSON.stringify(body)?.slice(0, 200)}: ${JSON.stringify(reply.body)}`).toBeLessThan(500);
      if (reply.status < 400) {
        // A mutation that is still a valid request: put the hold back, so every case starts from it.
        if (route === 'change') expect((await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 2 }] }, me)).status).toBe(200);
        continue;
      }
      expect(typeof reply.body.error).toBe('string');
    }
    logger.info({ statuses: Object.fromEntries(statuses) }, 'fuzz statuses');
    const after = await orderRow(id);
    expect(after.lines).toEqual(row.lines);
    expect(after.reservations).toEqual(row.reservations);
    await expectReservedMatchesOrders(sku);
    await expectGateMatchesPostgres(sku);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
  });
});
