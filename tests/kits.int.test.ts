/**
 * Kits and bundles (issue 14, docs/kits.md) on the real pipeline: the catalog in Postgres
 * (refusals by the database), kit availability derived from the components' views over HTTP and
 * pushed live over the WebSocket when a component changes, kit purchases reserving their
 * components through the gate and the write-back, cancel releasing them, and kits and single
 * purchases sharing a component under concurrency never overselling it.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { cleanUp, testConfig, testKafka, unique } from './helpers.ts';
import { startTestProcessor, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';
import { as, get, patch, post, purchaseTestConfig, type HttpReply } from './purchase-helpers.ts';
import { client, openClients } from './ws-client.ts';

const base = testConfig();
const prefix = unique('kit').replaceAll('-', '');
const config = purchaseTestConfig(prefix, { PURCHASE_MAX_PER_CUSTOMER: '0', CHANNEL_CONFIG_POLL_MS: '100' });
const pool = new pg.Pool({ connectionString: base.pg.url, max: 8 });
const redis = createRedis(base.redis);
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const P = unique('KT');
/** A sales channel of this run, served by one location of this run (docs/channels.md). */
const CHANNEL = `kits-${P.slice(3).toLowerCase()}`;
const CH_LOC = `${P}-L`;
let proc: TestProcessor;
let gw: GatewayService;

function buy(customer: string, items: Array<{ sku: string; qty: number }>): Promise<HttpReply> {
  return as(customer).then((auth) => post(gw.url, '/v1/purchases', { items }, { 'Idempotency-Key': randomUUID(), ...auth }));
}

/** Products, stock (units per location, WH-1, WH-2, ...) and kits (kit -> {component: qty}). */
async function setUp(stock: Record<string, number[]>, kits: Record<string, Record<string, number>>): Promise<void> {
  const skus = [...Object.keys(stock), ...Object.keys(kits)];
  await pool.query(`INSERT INTO products (sku, name) SELECT s, 'kits test' FROM unnest($1::text[]) AS s`, [skus]);
  for (const [sku, units] of Object.entries(stock)) {
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT $1, 'WH-' || i, q FROM unnest($2::int[]) WITH ORDINALITY AS t(q, i)`, [sku, units]);
  }
  for (const [kit, parts] of Object.entries(kits)) {
    await pool.query('INSERT INTO kits (sku) VALUES ($1)', [kit]);
    await pool.query('INSERT INTO kit_components (kit_sku, component_sku, quantity) SELECT $1, c, q FROM unnest($2::text[], $3::int[]) AS t(c, q)', [kit, Object.keys(parts), Object.values(parts)]);
  }
}

async function kitFigure(kit: string): Promise<number | undefined> {
  const r = await get(gw.url, `/v1/stock/${encodeURIComponent(kit)}`);
  return r.status === 200 && r.body.kit ? (r.body.available as number) : undefined;
}

async function reserved(sku: string): Promise<{ onHand: number; reserved: number; ordered: number }> {
  const s = await pool.query<{ on_hand: string; reserved: string }>('SELECT coalesce(sum(on_hand), 0) AS on_hand, coalesce(sum(reserved), 0) AS reserved FROM stock_levels WHERE sku = $1', [sku]);
  const o = await pool.query<{ units: string }>(`SELECT coalesce(sum(l.qty), 0) AS units FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE l.sku = $1 AND o.status = 'reserved'`, [sku]);
  return { onHand: Number(s.rows[0]!.on_hand), reserved: Number(s.rows[0]!.reserved), ordered: Number(o.rows[0]!.units) };
}

beforeAll(async () => {
  proc = await startTestProcessor({ config: base, kafka: testKafka(base), redis, prefix, groupId: unique('grp'), fromBeginning: false, channels: { pool, pollMs: 100 } });
  await waitProcessorLive(pool, proc.views, `${P}-probe`);
  gw = await startGatewayService(config, logger, { port: 0, metricsDefaults: false });
}, 120_000);

afterAll(async () => {
  for (const c of openClients) c.ws.terminate();
  await gw?.stop();
  await proc?.processor.stop();
  await pool.query('DELETE FROM sales_channels WHERE channel_id = $1', [CHANNEL]);
  await cleanUp(base, { redisPrefixes: [prefix], skuPrefixes: [P] });
  await pool.query(`DELETE FROM kits WHERE sku LIKE $1`, [`${P}%`]);
  await pool.query(`DELETE FROM products WHERE sku LIKE $1`, [`${P}%`]);
  await pool.end();
  redis.disconnect();
});

describe('the kit catalog', () => {
  it('refuses a kit containing itself, an unknown component, and kits inside kits; nothing changes', async () => {
    const [kit, other, part] = [`${P}-rk`, `${P}-rk2`, `${P}-rp`];
    await setUp({ [part]: [1] }, { [kit]: { [part]: 1 }, [other]: { [part]: 2 } });
    const before = await pool.query('SELECT (SELECT version FROM kit_config) AS v, (SELECT json_agg(c ORDER BY kit_sku, component_sku) FROM kit_components c WHERE kit_sku LIKE $1) AS rows', [`${P}-rk%`]);
    const refusal = (sql: string, params: unknown[]) => pool.query(sql, params).then(() => null, (e: { code?: string; message: string }) => e);
    const self = await refusal('INSERT INTO kit_components VALUES ($1, $1, 1)', [kit]);
    expect(self).toMatchObject({ code: '23514', message: `kit ${kit} cannot contain itself` });
    const unknown = await refusal('INSERT INTO kit_components VALUES ($1, $2, 1)', [kit, `${P}-nope`]);
    expect(unknown).toMatchObject({ code: '23503' }); // foreign key: not a product
    const nested = await refusal('INSERT INTO kit_components VALUES ($1, $2, 1)', [kit, other]);
    expect(nested?.message).toMatch(/is itself a kit/);
    const componentAsKit = await refusal('INSERT INTO kits (sku) VALUES ($1)', [part]);
    expect(componentAsKit?.message).toMatch(/component of a kit/);
    const zero = await refusal('UPDATE kit_components SET quantity = 0 WHERE kit_sku = $1', [kit]);
    expect(zero).toMatchObject({ code: '23514' });
    const after = await pool.query('SELECT (SELECT version FROM kit_config) AS v, (SELECT json_agg(c ORDER BY kit_sku, component_sku) FROM kit_components c WHERE kit_sku LIKE $1) AS rows', [`${P}-rk%`]);
    expect(after.rows[0]).toEqual(before.rows[0]);
  });
});

describe('a kit', () => {
  it('shows the minimum over its components, reserves them when bought, releases them on cancel, and is pushed live when a component changes', async () => {
    const [kit, a, b] = [`${P}-k`, `${P}-a`, `${P}-b`];
    await setUp({ [a]: [10, 5], [b]: [9] }, { [kit]: { [a]: 1, [b]: 2 } });
    // min(15 / 1, floor(9 / 2)) = 4, once the gateway has loaded the catalog and the views have the components.
    await waitUntil(async () => (await kitFigure(kit)) === 4, 20_000, `${kit} at 4 over HTTP`);
    const http = await get(gw.url, `/v1/stock/${encodeURIComponent(kit)}`);
    expect(http.body).toMatchObject({ sku: kit, available: 4, kit: { components: [{ sku: a, qty: 1 }, { sku: b, qty: 2 }] } });

    const ws = client(gw, '');
    ws.send({ op: 'subscribe', skus: [kit] });
    await ws.waitFor((f) => f.type === 'snapshot', 10_000, 'the kit snapshot');
    expect(ws.items().at(-1)).toMatchObject({ sku: kit, available: 4 });

    // Buying 2 kits reserves 2 of a and 4 of b, in Postgres, as one order that remembers the kit.
    const r = await buy('kit-buyer', [{ sku: kit, qty: 2 }]);
    expect(r.status).toBe(201);
    expect(r.body.kits).toEqual([{ sku: kit, qty: 2, components: [{ sku: a, qty: 1 }, { sku: b, qty: 2 }] }]);
    const orderId = r.body.orderId as string;
    expect(await reserved(a)).toMatchObject({ reserved: 2, ordered: 2 });
    expect(await reserved(b)).toMatchObject({ reserved: 4, ordered: 4 });
    const placed = await pool.query<{ payload: { kits?: unknown } }>(`SELECT payload FROM outbox WHERE aggregateid = $1 AND type = 'OrderPlaced'`, [orderId]);
    expect(placed.rows[0]?.payload.kits).toEqual(r.body.kits);
    const order = await get(gw.url, `/v1/orders/${orderId}`, await as('kit-buyer'));
    expect(order.body).toMatchObject({ status: 'reserved', kits: r.body.kits });
    // b: 9 - 4 = 5 -> floor(5 / 2) = 2 kits left, pushed to the subscriber.
    await ws.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ sku: string; available: number }>).some((i) => i.sku === kit && i.available === 2), 20_000, 'the kit at 2');
    // A hold bought with kits cannot be resized line by line.
    const resize = await post(gw.url, `/v1/orders/${orderId}/extend`, { seconds: 60 }, await as('kit-buyer'));
    expect(resize.status).toBe(200); // extend is fine ...
    const change = await patch(gw.url, `/v1/orders/${orderId}`, { items: [{ sku: a, qty: 1 }] }, await as('kit-buyer'));
    expect(change.status).toBe(400); // ... a change of one component is not
    expect(await reserved(a)).toMatchObject({ reserved: 2 });

    // Cancel acts on the components: the units come back, and so does the kit figure.
    const cancel = await post(gw.url, `/v1/orders/${orderId}/cancel`, {}, await as('kit-buyer'));
    expect(cancel.status).toBe(200);
    expect(await reserved(a)).toMatchObject({ reserved: 0 });
    expect(await reserved(b)).toMatchObject({ reserved: 0 });
    await ws.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ sku: string; available: number; version: number }>).some((i) => i.sku === kit && i.available === 4 && i.version > 0) && ws.items().filter((i) => i.sku === kit).length >= 3, 20_000, 'the kit back at 4');

    // A change of a component from anywhere (the back office's SQL) is pushed as the kit's new figure.
    await pool.query(`UPDATE stock_levels SET on_hand = 1 WHERE sku = $1 AND location_id = 'WH-1'`, [b]);
    await ws.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ sku: string; available: number }>).some((i) => i.sku === kit && i.available === 0), 20_000, 'the kit at 0');
    const versions = ws.items().filter((i) => i.sku === kit).map((i) => i.version);
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
    // Sold out now: a kit purchase is refused, nothing reserved.
    const refused = await buy('kit-buyer', [{ sku: kit, qty: 1 }]);
    expect(refused.status).toBe(409);
    expect(await reserved(a)).toMatchObject({ reserved: 0 });
  });

  it('per sales channel: the minimum over its components of their channel figures', async () => {
    const [kit, a, b] = [`${P}-chk`, `${P}-cha`, `${P}-chb`];
    await pool.query('INSERT INTO sales_channels (channel_id, name) VALUES ($1, $1)', [CHANNEL]);
    await pool.query('INSERT INTO sales_channel_locations (channel_id, location_id, priority) VALUES ($1, $2, 1)', [CHANNEL, CH_LOC]);
    await setUp({ [a]: [10], [b]: [1] }, { [kit]: { [a]: 1, [b]: 2 } });
    // The channel sells only CH_LOC: a has 3 there, b 8.
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, $3, 3), ($2, $3, 8)`, [a, b, CH_LOC]);
    const figure = async (q: string) => (await get(gw.url, `/v1/stock/${encodeURIComponent(kit)}${q}`)).body.available;
    // Pooled: min(13, floor(9 / 2)) = 4; on the channel: min(3, floor(8 / 2)) = 3.
    await waitUntil(async () => (await figure(`?channel=${CHANNEL}`)) === 3, 20_000, `${kit} at 3 on ${CHANNEL}`);
    expect(await figure('')).toBe(4);
    // A channel subscriber follows the channel's kit figure.
    const ws = client(gw, `?sales_channel=${CHANNEL}`);
    ws.send({ op: 'subscribe', skus: [kit] });
    await ws.waitFor((f) => f.type === 'snapshot', 10_000, 'the channel snapshot');
    expect(ws.items().at(-1)).toMatchObject({ sku: kit, available: 3, channel: CHANNEL });
    await pool.query('UPDATE stock_levels SET on_hand = 1 WHERE sku = $1 AND location_id = $2', [a, CH_LOC]);
    await ws.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ sku: string; available: number }>).some((i) => i.sku === kit && i.available === 1), 20_000, 'the channel kit at 1');
    expect(await figure('')).toBe(4); // a: 11 pooled, still more than b gives
  });

  it('refuses a purchase whose kits expand past the per-line bound; nothing is reserved', async () => {
    const [kit, part] = [`${P}-bk`, `${P}-bp`];
    await setUp({ [part]: [5000] }, { [kit]: { [part]: 600 } });
    await waitUntil(async () => (await kitFigure(kit)) === 8, 20_000, `${kit} at 8`);
    const r = await buy('bound-buyer', [{ sku: kit, qty: 2 }]);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: 'invalid_body', details: { field: 'items[0].qty' } });
    expect(await reserved(part)).toMatchObject({ reserved: 0 });
  });
});

describe('kits and singles sharing a component', () => {
  it('never oversell the component under concurrent purchases', async () => {
    // shared: 30 units over two locations; a kit takes 3 of them (and 1 of extra).
    const [kit, shared, extra] = [`${P}-ck`, `${P}-cs`, `${P}-ce`];
    await setUp({ [shared]: [18, 12], [extra]: [100] }, { [kit]: { [shared]: 3, [extra]: 1 } });
    await waitUntil(async () => (await kitFigure(kit)) === 10, 20_000, `${kit} at 10`);
    // 60 single buyers of 1 and 30 kit buyers, all at once: 150 units asked of 30.
    const attempts = [
      ...Array.from({ length: 60 }, (_, i) => () => buy(`single-${i}`, [{ sku: shared, qty: 1 }]).then((r) => ({ kind: 'single' as const, r }))),
      ...Array.from({ length: 30 }, (_, i) => () => buy(`kitter-${i}`, [{ sku: kit, qty: 1 }]).then((r) => ({ kind: 'kit' as const, r }))),
    ].sort(() => Math.random() - 0.5);
    const results = await Promise.all(attempts.map((f) => f()));
    // Every answer is a sale or a sold-out refusal (the gate's transient undersell may refuse a
    // last unit or two; it never oversells).
    for (const x of results) {
      if (x.r.status !== 201) expect(x.r.body).toMatchObject({ error: 'sold_out' });
    }
    const kitsSold = results.filter((x) => x.kind === 'kit' && x.r.status === 201).length;
    const singlesSold = results.filter((x) => x.kind === 'single' && x.r.status === 201).length;
    // Every 201 is an order in Postgres; what they promise fits what Postgres holds.
    const s = await reserved(shared);
    expect(s.ordered).toBe(3 * kitsSold + singlesSold);
    expect(s.reserved).toBe(s.ordered);
    expect(s.reserved).toBeLessThanOrEqual(s.onHand);
    const e = await reserved(extra);
    expect(e.ordered).toBe(kitsSold);
    const perLocation = await pool.query<{ bad: string }>('SELECT count(*) AS bad FROM stock_levels WHERE sku = ANY($1) AND reserved > on_hand', [[shared, extra]]);
    expect(Number(perLocation.rows[0]!.bad)).toBe(0);
    expect(kitsSold + singlesSold).toBeGreaterThan(0);
  }, 60_000);
});
