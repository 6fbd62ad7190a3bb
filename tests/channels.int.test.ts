/**
 * Sales channels (issue 13, docs/channels.md) on the real pipeline: channel configuration in
 * Postgres, figures folded by the processor (Lua) and read by the gateway (TypeScript), purchases
 * gated per channel and allocated by the channel's sourcing rule, channel WebSocket feeds.
 *
 * Two channels share a location: web serves L-B and L-A (priority B, then A) with a 10-unit
 * fence, which sits on L-B; mkt serves only L-B. So mkt may sell L-B's units minus those 10.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocateFor, type LocationStock } from '../purchase/domain/allocate.ts';
import { channelAvailability, channelTerms, CHANNEL_FIELD_PREFIX, pinsAgainst, SOURCING_RULES, type ChannelConfig, type Fence, type SalesChannel } from '../lib/contracts/channels.ts';
import { loadChannelConfig } from '../lib/channel-config.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { mulberry32 as prng } from '../lib/prng.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import type { RowChange } from '../stream-processors/domain/fold.ts';
import { reconcileViews } from '../stream-processors/views-maintenance.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSchemaRegistry } from '../lib/avro-registry.ts';
import type { StockAlert } from '../schemas/generated/avro-types.ts';
import { cleanUp, testConfig, testKafka, unique, watchTopic } from './helpers.ts';
import { startTestProcessor, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';
import { customerToken, get, purchaseTestConfig, patch, post, type HttpReply } from './purchase-helpers.ts';
import { client, openClients } from './ws-client.ts';

const base = testConfig();
const prefix = unique('chan').replaceAll('-', '');
const config = purchaseTestConfig(prefix, { PURCHASE_MAX_PER_CUSTOMER: '0', CHANNEL_CONFIG_POLL_MS: '100' });
const pool = new pg.Pool({ connectionString: base.pg.url, max: 8 });
const redis = createRedis(base.redis);
const registry = createSchemaRegistry(base.registry.url);
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const tag = randomUUID().slice(0, 8);
const WEB = `web-${tag}`;
const MKT = `mkt-${tag}`;
const EMPTY = `empty-${tag}`;
const LA = `LA-${tag}`;
const LB = `LB-${tag}`;
const LC = `LC-${tag}`;
const skuPrefix = unique('CH');
const channelIds = [WEB, MKT, EMPTY];
let proc: TestProcessor;
let gw: GatewayService;

async function token(customer: string, channels: string[]): Promise<Record<string, string>> {
  return { Authorization: `Bearer ${await customerToken(customer, { sales_channels: channels })}` };
}

function buy(sku: string, qty: number, headers: Record<string, string>, channel?: string): Promise<HttpReply> {
  return post(gw.url, '/v1/purchases', { items: [{ sku, qty }], ...(channel ? { channel } : {}) }, { 'Idempotency-Key': randomUUID(), ...headers });
}

let n = 0;
/** A SKU with these units per location. */
async function stock(units: Record<string, number>): Promise<string> {
  const sku = `${skuPrefix}-${n++}`;
  await pool.query('INSERT INTO stock_levels (sku, location_id, on_hand) SELECT $1, l, q FROM unnest($2::text[], $3::int[]) AS t(l, q)', [sku, Object.keys(units), Object.values(units)]);
  return sku;
}

/** The channel figures Postgres' rows give with the configuration Postgres holds now. */
async function truth(sku: string): Promise<Record<string, number>> {
  const cfg = await loadChannelConfig(pool);
  const rows = await pool.query<{ location_id: string; a: number }>('SELECT location_id, greatest(0, on_hand - reserved - safety_stock) AS a FROM stock_levels WHERE sku = $1', [sku]);
  const all = channelAvailability(new Map(rows.rows.map((r) => [r.location_id, r.a])), channelTerms(cfg, sku));
  return { [WEB]: all[WEB]!, [MKT]: all[MKT]! };
}

async function figure(sku: string, channel: string): Promise<number | undefined> {
  const r = await get(gw.url, `/v1/stock/${encodeURIComponent(sku)}?channel=${channel}`);
  return r.status === 200 ? (r.body.available as number) : undefined;
}

/** Waits until the gateway (TypeScript) and the view (Lua, what the gate sells from) both show Postgres' channel figures. */
async function converged(sku: string, timeoutMs = 20_000): Promise<Record<string, number>> {
  let want: Record<string, number> = {};
  await waitUntil(
    async () => {
      want = await truth(sku);
      const lua = await redis.hmget(proc.views.keys.summary(sku), `${CHANNEL_FIELD_PREFIX}${WEB}`, `${CHANNEL_FIELD_PREFIX}${MKT}`);
      return (await figure(sku, WEB)) === want[WEB] && (await figure(sku, MKT)) === want[MKT] && Number(lua[0]) === want[WEB] && Number(lua[1]) === want[MKT];
    },
    timeoutMs,
    `${sku}'s channel figures to converge`,
  );
  return want;
}

beforeAll(async () => {
  await pool.query('INSERT INTO sales_channels (channel_id, name, sourcing, fence_units) VALUES ($1, $1, $2, 10), ($3, $3, $4, NULL), ($5, $5, $6, NULL)', [WEB, 'priority', MKT, 'most_stock', EMPTY, 'most_stock']);
  await pool.query('INSERT INTO sales_channel_locations (channel_id, location_id, priority) VALUES ($1, $2, 2), ($1, $3, 1), ($4, $3, 1)', [WEB, LA, LB, MKT]);
  proc = await startTestProcessor({ config: base, kafka: testKafka(base), redis, prefix, groupId: unique('grp'), fromBeginning: false, channels: { pool } });
  await waitProcessorLive(pool, proc.views, `${prefix}-probe`);
  gw = await startGatewayService(config, logger, { port: 0, metricsDefaults: false });
}, 120_000);

afterAll(async () => {
  for (const c of openClients) c.ws.terminate();
  await gw?.stop();
  await proc?.processor.stop();
  await pool.query('DELETE FROM sales_channels WHERE channel_id = ANY ($1)', [channelIds]);
  await cleanUp(base, { redisPrefixes: [prefix], skuPrefixes: [skuPrefix] });
  await pool.end();
  redis.disconnect();
});

describe('channel figures', () => {
  it('folds each channel its locations minus the other channels\' fences, in the view and over HTTP', async () => {
    const sku = await stock({ [LA]: 20, [LB]: 15, [LC]: 7 });
    const want = await converged(sku);
    expect(want).toEqual({ [WEB]: 35, [MKT]: 5 }); // mkt: L-B's 15 minus web's fence of 10 on it
    const plain = await get(gw.url, `/v1/stock/${encodeURIComponent(sku)}`);
    expect(plain.body.available).toBe(42); // the pooled figure is unchanged
    const named = await get(gw.url, `/v1/stock/${encodeURIComponent(sku)}?channel=${MKT}`);
    expect(named.body).toMatchObject({ sku, channel: MKT, available: 5 });
  });

  it('matches the TypeScript rule in the Lua apply script on random configurations', async () => {
    const rnd = prng(1301);
    const views = new RedisViews({ redis, prefix, channels: { config: { version: 0, channels: new Map(), skuFences: new Map() } } });
    for (let c = 0; c < 40; c++) {
      const locs = ['a', 'b', 'c', 'd'];
      const channels = new Map<string, SalesChannel>();
      const count = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < count; i++) {
        const mine = locs.filter(() => rnd() < 0.6);
        const r = rnd();
        const fence: Fence | null = r < 0.3 ? null : r < 0.65 ? { units: Math.floor(rnd() * 30) } : { bp: Math.floor(rnd() * 10_001) };
        channels.set(`c${i}`, { id: `c${i}`, name: `c${i}`, sourcing: 'priority', pickupLocation: null, locations: mine, fence });
      }
      const cfg: ChannelConfig = { version: c + 1, channels, skuFences: new Map() };
      (views as unknown as { channels: { config: ChannelConfig } }).channels = { config: cfg };
      const sku = `${skuPrefix}-lua-${c}`;
      const changes: RowChange[] = locs.map((l, i) => ({ sku, locationId: l, deleted: rnd() < 0.1, onHand: Math.floor(rnd() * 40), reserved: Math.floor(rnd() * 10), safetyStock: Math.floor(rnd() * 5), version: i + 1, commitTs: 1 }));
      const [res] = await views.applySkus([changes], { force: true });
      const stored = await redis.hgetall(views.keys.summary(sku));
      const lua = Object.fromEntries([...channels.keys()].map((id) => [id, Number(stored[`${CHANNEL_FIELD_PREFIX}${id}`])]));
      expect(lua, `case ${c}`).toEqual(res!.summary.channels);
    }
  });
});

describe('stock alerts per channel', () => {
  it('fires out of stock and back in stock for the channel whose figure crossed zero, once each', async () => {
    const watcher = await watchTopic(testKafka(base), proc.topics.alerts, { binary: true });
    try {
      const sku = await stock({ [LA]: 20, [LB]: 12 });
      await converged(sku); // mkt = 12 - 10 (web's fence on L-B) = 2
      // The insert itself may alert (its rows arrive one by one: mkt is 0 until L-B's row): count from here.
      const from = Number((await pool.query<{ v: string }>('SELECT max(version) AS v FROM stock_levels WHERE sku = $1', [sku])).rows[0]!.v);
      await pool.query('UPDATE stock_levels SET on_hand = 10 WHERE sku = $1 AND location_id = $2', [sku, LB]); // mkt 0: out
      await converged(sku);
      await pool.query('UPDATE stock_levels SET on_hand = 13 WHERE sku = $1 AND location_id = $2', [sku, LB]); // mkt 3: back
      await converged(sku);
      let mine: StockAlert[] = [];
      await waitUntil(
        async () => {
          const msgs = watcher.messages.filter((m) => m.key === sku);
          mine = (await Promise.all(msgs.map((m) => registry.decode(Buffer.from(m.value!, 'binary')) as Promise<StockAlert>))).filter((a) => a.version > from);
          return mine.filter((a) => a.channel === MKT).length >= 2;
        },
        15_000,
        `two ${MKT} alerts for ${sku}`,
      );
      await sleep(500); // nothing more may follow
      const forMkt = [...new Map(mine.filter((a) => a.channel === MKT).map((a) => [a.alertId, a])).values()];
      expect(forMkt.map((a) => [a.kind, a.available])).toEqual([
        ['OUT_OF_STOCK', 0],
        ['BACK_IN_STOCK', 3],
      ]);
      // web never crossed zero (42 -> 30 -> 33): no alert for it.
      expect(mine.filter((a) => a.channel === WEB)).toEqual([]);
    } finally {
      await watcher.stop();
    }
  });
});

describe('reconciliation', () => {
  it('finds channel figures that disagree with their rows and recomputes them', async () => {
    const sku = await stock({ [LA]: 8, [LB]: 9 });
    const want = await converged(sku);
    await redis.hset(proc.views.keys.summary(sku), `${CHANNEL_FIELD_PREFIX}${MKT}`, 999);
    const found = await reconcileViews({ pool, views: proc.views, feedMaxLen: 10_000 }, { skuPrefix: sku, settleMs: 0 });
    expect(found.channelDrift).toEqual([sku]);
    expect(Number(await redis.hget(proc.views.keys.summary(sku), `${CHANNEL_FIELD_PREFIX}${MKT}`))).toBe(999); // not repaired without repair
    const fixed = await reconcileViews({ pool, views: proc.views, feedMaxLen: 10_000 }, { skuPrefix: sku, settleMs: 0, repair: true });
    expect(fixed.channelDrift).toEqual([sku]);
    expect(Number(await redis.hget(proc.views.keys.summary(sku), `${CHANNEL_FIELD_PREFIX}${MKT}`))).toBe(want[MKT]);
    expect((await reconcileViews({ pool, views: proc.views, feedMaxLen: 10_000 }, { skuPrefix: sku, settleMs: 0 })).channelDrift).toEqual([]);
  });
});

describe('purchases on a channel', () => {
  it('never oversells either channel or a location under concurrent flash sales on both', async () => {
    const sku = await stock({ [LA]: 20, [LB]: 15 });
    await converged(sku);
    const webBuyers = await Promise.all(Array.from({ length: 60 }, (_, i) => token(`w${i}-${tag}`, [WEB])));
    const mktBuyers = await Promise.all(Array.from({ length: 30 }, (_, i) => token(`m${i}-${tag}`, [MKT])));
    const answers = await Promise.all([
      ...webBuyers.map((h) => buy(sku, 1, h).then((r) => ({ ch: WEB, r }))),
      ...mktBuyers.map((h) => buy(sku, 1, h).then((r) => ({ ch: MKT, r }))),
    ]);
    for (const a of answers) expect([201, 409], JSON.stringify(a.r.body)).toContain(a.r.status);
    const sold = (ch: string) => answers.filter((a) => a.ch === ch && a.r.status === 201).length;
    expect(sold(MKT)).toBeLessThanOrEqual(5);
    expect(sold(WEB) + sold(MKT)).toBeLessThanOrEqual(35);
    expect(sold(WEB) + sold(MKT)).toBeGreaterThan(0);
    const orders = await pool.query<{ channel_id: string; location_id: string; qty: number }>(
      'SELECT o.channel_id, r.location_id, r.qty FROM orders o JOIN reservations r ON r.order_id = o.id WHERE r.sku = $1',
      [sku],
    );
    // Each channel's orders sit only on its locations; the locations are never oversold.
    for (const o of orders.rows) expect(o.channel_id === MKT ? [LB] : [LA, LB]).toContain(o.location_id);
    expect(orders.rows.filter((o) => o.channel_id === MKT).reduce((s, o) => s + o.qty, 0)).toBe(sold(MKT));
    const rows = await pool.query<{ location_id: string; on_hand: number; reserved: number }>('SELECT location_id, on_hand, reserved FROM stock_levels WHERE sku = $1', [sku]);
    for (const r of rows.rows) expect(r.reserved).toBeLessThanOrEqual(r.on_hand);
    // The web shop sources by priority: L-B is used up before any web unit comes from L-A.
    const webOnA = orders.rows.filter((o) => o.channel_id === WEB && o.location_id === LA).length;
    if (webOnA > 0) expect(rows.rows.find((r) => r.location_id === LB)!.reserved).toBe(15);
    await converged(sku);
  });

  it('refuses a channel the credential may not use, an unknown channel and a channel without locations, reserving nothing', async () => {
    const sku = await stock({ [LA]: 5, [LB]: 5 });
    await converged(sku);
    const webOnly = await token(`x-${tag}`, [WEB]);
    const forbidden = await buy(sku, 1, webOnly, MKT);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toBe('channel_forbidden');
    const unknownCh = await buy(sku, 1, await token(`y-${tag}`, [WEB, `nope-${tag}`]), `nope-${tag}`);
    expect(unknownCh.status).toBe(404);
    expect(unknownCh.body.error).toBe('unknown_sales_channel');
    const empty = await buy(sku, 1, await token(`z-${tag}`, [EMPTY]));
    expect(empty.status).toBe(409);
    expect(empty.body.error).toBe('channel_without_locations');
    const malformed = await buy(sku, 1, webOnly, 'Not A Channel');
    expect(malformed.status).toBe(400);
    expect((await get(gw.url, `/v1/stock/${encodeURIComponent(sku)}?channel=nope-${tag}`)).status).toBe(404);
    expect((await get(gw.url, `/v1/stock/${encodeURIComponent(sku)}?channel=BAD%20ID`)).status).toBe(400);
    const reserved = await pool.query<{ r: number }>('SELECT sum(reserved)::int AS r FROM stock_levels WHERE sku = $1', [sku]);
    expect(reserved.rows[0]!.r).toBe(0);
    const ws = client(gw, `?sales_channel=nope-${tag}`);
    expect(await ws.closed).toBe(4002);
  });

  it('grows an order sold on a channel from that channel\'s figure, on its locations, around the other channel\'s fence', async () => {
    const sku = await stock({ [LA]: 20, [LB]: 15 });
    await converged(sku); // mkt: 15 - 10 (web's fence on L-B) = 5
    const h = await token(`grow-${tag}`, [MKT]);
    const placed = await buy(sku, 1, h);
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ status: 'reserved' });
    const id = placed.body.orderId as string;
    await converged(sku); // mkt: 4 left
    const grown = await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 5 }] }, h);
    expect(grown.status, JSON.stringify(grown.body)).toBe(200);
    expect(grown.body).toMatchObject({ channel: MKT });
    await converged(sku); // mkt: 0
    const tooMuch = await patch(gw.url, `/v1/orders/${id}`, { items: [{ sku, qty: 6 }] }, h);
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.body.error).toBe('sold_out');
    const res = await pool.query<{ location_id: string; qty: number }>('SELECT location_id, qty FROM reservations WHERE order_id = $1', [id]);
    expect(res.rows).toEqual([{ location_id: LB, qty: 5 }]);
    // web's fence is intact on L-B: 15 - 5 reserved = 10 left there.
    const b = await pool.query<{ a: number }>('SELECT on_hand - reserved AS a FROM stock_levels WHERE sku = $1 AND location_id = $2', [sku, LB]);
    expect(b.rows[0]!.a).toBe(10);
  });

  it('allocates like allocateFor for every sourcing rule, around another channel\'s fence (write-back function against its specification)', async () => {
    const rnd = prng(1313);
    const locs = [`S1-${tag}`, `S2-${tag}`, `S3-${tag}`];
    // A fenced channel on S2 then S1: its 4 units are pinned there, and no rule may take them.
    const fenced = `pin-${tag}`;
    channelIds.push(fenced);
    await pool.query('INSERT INTO sales_channels (channel_id, name, fence_units) VALUES ($1, $1, 4)', [fenced]);
    await pool.query('INSERT INTO sales_channel_locations (channel_id, location_id, priority) VALUES ($1, $2, 1), ($1, $3, 2)', [fenced, locs[1], locs[0]]);
    for (const rule of SOURCING_RULES) {
      const id = `src-${rule.replace('_', '-')}-${tag}`;
      channelIds.push(id);
      const order = [...locs].sort(() => rnd() - 0.5);
      await pool.query('INSERT INTO sales_channels (channel_id, name, sourcing, pickup_location) VALUES ($1, $1, $2, $3)', [id, rule, rule === 'single' ? order[0] : null]);
      await pool.query('INSERT INTO sales_channel_locations (channel_id, location_id, priority) SELECT $1, l, p FROM unnest($2::text[]) WITH ORDINALITY AS t(l, p)', [id, order]);
      for (let c = 0; c < 12; c++) {
        const units = Object.fromEntries(locs.map((l) => [l, Math.floor(rnd() * 8)]));
        const sku = await stock(units);
        const qty = 1 + Math.floor(rnd() * 12);
        const stockRows: LocationStock[] = locs.map((l) => ({ locationId: l, onHand: units[l]!, reserved: 0, safetyStock: 0 }));
        const cfg = await loadChannelConfig(pool);
        const pinned = pinsAgainst(new Map(Object.entries(units)), channelTerms(cfg, sku), id);
        const expected = allocateFor(stockRows, qty, rule, rule === 'single' ? [order[0]!] : order, pinned);
        const hold = { id: randomUUID(), customer: `alloc-${tag}`, idem: randomUUID(), hash: 'h', expires: new Date(Date.now() + 60_000).toISOString(), items: [{ sku, qty }], channel: id };
        const r = await pool.query<{ out: Array<{ ok: boolean; lines?: Array<{ allocations: Array<{ locationId: string; qty: number }> }> }> }>('SELECT purchase_write_back($1::jsonb) AS out', [JSON.stringify([hold])]);
        const got = r.rows[0]!.out[0]!;
        expect(got.ok ? got.lines![0]!.allocations : null, `${rule} case ${c}: ${JSON.stringify({ units, qty, order })}`).toEqual(expected);
      }
    }
  });
});

describe('channel feeds', () => {
  it('pushes a restock only to the channels whose locations it changes, and a reconfiguration to the channel it affects', async () => {
    const sku = await stock({ [LA]: 20, [LB]: 15 });
    await converged(sku);
    const web = client(gw, `?sales_channel=${WEB}`);
    const mkt = client(gw, `?sales_channel=${MKT}`);
    for (const c of [web, mkt]) c.send({ op: 'subscribe', skus: [sku] });
    await web.waitFor((f) => f.type === 'snapshot', 10_000, 'web snapshot');
    await mkt.waitFor((f) => f.type === 'snapshot', 10_000, 'mkt snapshot');
    expect(web.items().at(-1)).toMatchObject({ sku, available: 35, channel: WEB });
    expect(mkt.items().at(-1)).toMatchObject({ sku, available: 5, channel: MKT });

    // L-A serves only web: web sees 45, mkt is not told anything.
    await pool.query('UPDATE stock_levels SET on_hand = 30 WHERE sku = $1 AND location_id = $2', [sku, LA]);
    await web.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ available: number }>).some((i) => i.available === 45), 10_000, 'web restock delta');
    // L-B serves both: mkt's first delta is this one.
    await pool.query('UPDATE stock_levels SET on_hand = 25 WHERE sku = $1 AND location_id = $2', [sku, LB]);
    await mkt.waitFor((f) => f.type === 'deltas', 10_000, 'mkt delta');
    expect(mkt.items().slice(1).map((i) => i.available)).toEqual([15]);
    await web.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ available: number }>).some((i) => i.available === 55), 10_000, 'web second delta');

    // Reconfiguration: mkt also serves L-A. Its figure changes with no stock change.
    await pool.query('INSERT INTO sales_channel_locations (channel_id, location_id, priority) VALUES ($1, $2, 0)', [MKT, LA]);
    const want = await converged(sku);
    expect(want[MKT]).toBe(55 - 10);
    await mkt.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ available: number }>).some((i) => i.available === want[MKT]), 10_000, 'mkt reconfigured figure');
    await pool.query('DELETE FROM sales_channel_locations WHERE channel_id = $1 AND location_id = $2', [MKT, LA]);
    await converged(sku);
  });

  it('converges when the configuration changes during a burst of purchases and restocks', async () => {
    const sku = await stock({ [LA]: 40, [LB]: 40 });
    await converged(sku);
    const buyers = await Promise.all(Array.from({ length: 20 }, (_, i) => token(`b${i}-${tag}`, [WEB, MKT])));
    const traffic = Promise.all(buyers.map((h, i) => buy(sku, 1, h, i % 2 ? WEB : MKT)));
    const restocks = (async () => {
      for (let i = 0; i < 10; i++) await pool.query('UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = $1 AND location_id = $2', [sku, i % 2 ? LA : LB]);
    })();
    await pool.query('UPDATE sales_channels SET fence_units = 25 WHERE channel_id = $1', [WEB]);
    await pool.query('UPDATE sales_channels SET fence_units = 5 WHERE channel_id = $1', [MKT]);
    await Promise.all([traffic, restocks]);
    const want = await converged(sku);
    const rows = await pool.query<{ location_id: string; a: number }>('SELECT location_id, on_hand - reserved AS a FROM stock_levels WHERE sku = $1', [sku]);
    const b = rows.rows.find((r) => r.location_id === LB)!.a;
    expect(want[MKT]).toBe(Math.max(0, b - Math.min(25, b)));
    await pool.query('UPDATE sales_channels SET fence_units = 10 WHERE channel_id = $1', [WEB]);
    await pool.query('UPDATE sales_channels SET fence_units = NULL WHERE channel_id = $1', [MKT]);
  });
});
