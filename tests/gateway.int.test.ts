/**
 * The gateway's WebSocket feed on the real pipeline (Postgres -> Debezium -> Kafka -> processor ->
 * Redis feed -> two gateways), spoken to with raw `ws` clients so every frame is checked.
 */
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.ts';
import { encodeFeedPack } from '../lib/contracts/feed.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { cleanUp, testConfig, testKafka, unique } from './helpers.ts';
import { startTestProcessor, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';
import { client, openClients } from './ws-client.ts';

const base = testConfig();
const prefix = unique('gw').replaceAll('-', '');
const JWT_SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const config = loadConfig({
  ...process.env,
  REDIS_PREFIX: prefix,
  GATEWAY_MAX_SUBSCRIPTIONS: '5',
  GATEWAY_MAX_FRAME_BYTES: '4096',
  GATEWAY_MAX_INVALID_FRAMES: '3',
  GATEWAY_MAX_BUFFERED_BYTES: '65536',
  GATEWAY_JWT_SECRET: JWT_SECRET,
});
const pool = new pg.Pool({ connectionString: base.pg.url, max: 6 });
const redis = createRedis(base.redis);
const logger = createLogger({ level: 'silent' });
let proc: TestProcessor;
let gwA: GatewayService;
let gwB: GatewayService;

/** SKU prefixes seeded here (removed in afterAll with the Redis prefix). */
const seeded: string[] = [];

async function seed(count: number): Promise<string[]> {
  const p = unique('GW');
  seeded.push(p);
  const skus = Array.from({ length: count }, (_, i) => `${p}-${i}`);
  await pool.query(
    `INSERT INTO stock_levels (sku, location_id, on_hand, reserved) SELECT s, 'WH-' || l, 10, 1 FROM unnest($1::text[]) s, generate_series(1, 2) l`,
    [skus],
  );
  // Let the processor fold them so snapshots find them.
  await waitUntil(async () => (await proc.views.readRows(skus)).size === skus.length, 20_000, 'the seeded SKUs in the views');
  return skus;
}

async function pgVersion(sku: string): Promise<number> {
  const { rows } = await pool.query<{ v: string }>(`SELECT max(version) AS v FROM stock_levels WHERE sku = $1`, [sku]);
  return Number(rows[0]!.v);
}

beforeAll(async () => {
  proc = await startTestProcessor({ config: base, kafka: testKafka(base), redis, prefix, groupId: unique('grp'), fromBeginning: false });
  await waitProcessorLive(pool, proc.views, `${prefix}-probe`);
  gwA = await startGatewayService(config, logger, { port: 0, metricsDefaults: false });
  gwB = await startGatewayService(config, logger, { port: 0, metricsDefaults: false });
});

afterAll(async () => {
  for (const c of openClients) c.ws.terminate();
  await gwA?.stop();
  await gwB?.stop();
  await proc?.processor.stop();
  await pool.end();
  redis.disconnect();
  await cleanUp(base, { redisPrefixes: [prefix], skuPrefixes: [...seeded, prefix] });
});

describe('gateway: channels and auth', () => {
  it.each([
    ['wms without a token', '?channel=wms', {}, 4001, 'unauthorized'],
    ['wms with a wrong key', '?channel=wms&token=not-a-key', {}, 4001, 'unauthorized'],
    ['erp with the wms key', '?channel=erp&token=dev-wms-key', {}, 4001, 'unauthorized'],
    ['an unknown channel', '?channel=pos', {}, 4002, 'unknown_channel'],
  ])('refuses %s with an error frame and close code', async (_what, query, headers, code, error) => {
    const c = client(gwA, query, headers);
    expect(await c.closed).toBe(code);
    expect(c.frames).toEqual([expect.objectContaining({ type: 'error', code: error })]);
  });

  it('accepts an API key (query or Bearer header) and a JWT allowed for the channel; refuses an expired JWT', async () => {
    const key = client(gwA, '?channel=wms&token=dev-wms-key');
    await key.waitFor((f) => f.type === 'welcome');
    const bearer = client(gwA, '?channel=erp', { authorization: 'Bearer dev-erp-key' });
    await bearer.waitFor((f) => f.type === 'welcome');
    const secret = new TextEncoder().encode(JWT_SECRET);
    const good = await new SignJWT({ channels: ['erp'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('erp-1').setExpirationTime('5m').sign(secret);
    const jwt = client(gwA, `?channel=erp&token=${good}`);
    await jwt.waitFor((f) => f.type === 'welcome' && f.channel === 'erp');
    const old = await new SignJWT({ channels: ['erp'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret);
    const expired = client(gwA, `?channel=erp&token=${old}`);
    expect(await expired.closed).toBe(4001);
    expect(expired.frames[0]).toMatchObject({ type: 'error', code: 'unauthorized', message: expect.stringContaining('exp') });
  });
});

describe('gateway: feed', () => {
  it('storefront frames never carry per-location quantities; wms frames do', async () => {
    const [sku] = await seed(1);
    const shop = client(gwA, '?channel=storefront');
    shop.send({ op: 'subscribe', skus: [sku] });
    await shop.waitFor((f) => f.type === 'snapshot');
    const wms = client(gwA, '?channel=wms&token=dev-wms-key');
    wms.send({ op: 'subscribe', skus: [sku] });
    await wms.waitFor((f) => f.type === 'snapshot');
    await pool.query(`UPDATE stock_levels SET on_hand = 30 WHERE sku = $1 AND location_id = 'WH-1'`, [sku]);
    await shop.waitFor((f) => f.type === 'deltas');
    await wms.waitFor((f) => f.type === 'deltas');
    for (const item of shop.items()) expect(Object.keys(item).sort()).toEqual(['available', 'commitTs', 'sku', 'version']);
    const full = wms.items().at(-1)!;
    expect(full).toMatchObject({ sku, available: 38, onHand: 40, reserved: 2 });
    expect(full.locations).toEqual([
      expect.objectContaining({ locationId: 'WH-1', onHand: 30, reserved: 1, available: 29 }),
      expect.objectContaining({ locationId: 'WH-2', onHand: 10, reserved: 1, available: 9 }),
    ]);
  });

  it('per SKU, versions only increase on a connection, and the last one is Postgres\' version', async () => {
    const skus = await seed(5);
    const c = client(gwA, '');
    c.send({ op: 'subscribe', skus });
    await c.waitFor((f) => f.type === 'snapshot');
    for (let i = 0; i < 300; i++) {
      const sku = skus[i % skus.length]!;
      await pool.query(`UPDATE stock_levels SET on_hand = $2 WHERE sku = $1 AND location_id = $3`, [sku, i, i % 2 ? 'WH-1' : 'WH-2']);
    }
    for (const sku of skus) {
      const v = await pgVersion(sku);
      await c.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ sku: string; version: number }>).some((it) => it.sku === sku && it.version === v), 30_000, `${sku} at v${v}`);
    }
    const bySku = new Map<string, number[]>();
    for (const it of c.items()) bySku.set(it.sku, [...(bySku.get(it.sku) ?? []), it.version]);
    for (const [, versions] of bySku) {
      for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
    }
    // Coalescing: fewer frames than changes.
    const deltaFrames = c.frames.filter((f) => f.type === 'deltas').length;
    expect(deltaFrames).toBeLessThan(300);
  });

  it('two gateways both deliver every change', async () => {
    const [sku] = await seed(1);
    const a = client(gwA, '');
    const b = client(gwB, '');
    for (const c of [a, b]) c.send({ op: 'subscribe', skus: [sku] });
    await Promise.all([a, b].map((c) => c.waitFor((f) => f.type === 'snapshot')));
    await pool.query(`UPDATE stock_levels SET on_hand = 5 WHERE sku = $1 AND location_id = 'WH-2'`, [sku!]);
    const v = await pgVersion(sku!);
    for (const c of [a, b]) {
      await c.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ version: number }>).some((it) => it.version === v));
    }
  });

  it('a client that resumes with its cursor gets the changes it missed and converges', async () => {
    const skus = await seed(3);
    const first = client(gwA, '');
    first.send({ op: 'subscribe', skus });
    const snap = await first.waitFor((f) => f.type === 'snapshot');
    const held = new Map(first.items().map((it) => [it.sku, it]));
    const cursor = String(snap.cursor);
    first.ws.close();
    await first.closed;
    // Changes while disconnected.
    await pool.query(`UPDATE stock_levels SET on_hand = 77 WHERE sku = $1 AND location_id = 'WH-1'`, [skus[0]!]);
    await pool.query(`UPDATE stock_levels SET on_hand = 3 WHERE sku = $1`, [skus[2]!]);
    const expected = await Promise.all(skus.map(pgVersion));
    await waitUntil(async () => {
      const rows = await proc.views.readRows(skus);
      return skus.every((s, i) => Math.max(...Object.values(rows.get(s) ?? {}).map((r) => r.version)) === expected[i]);
    }, 20_000, 'the views to catch up');
    // Reconnect to the other gateway, resuming.
    const again = client(gwB, '');
    again.send({ op: 'subscribe', skus, since: cursor });
    await again.waitFor((f) => f.type === 'subscribed');
    await again.waitFor((f) => f.type === 'deltas' && (f.items as unknown[]).length > 0);
    await waitUntil(async () => {
      for (const it of again.items()) if (!held.has(it.sku) || held.get(it.sku)!.version < it.version) held.set(it.sku, it);
      return skus.every((s, i) => held.get(s)?.version === expected[i]);
    }, 20_000, 'the resumed client to hold Postgres\' versions');
    expect(again.frames.some((f) => f.type === 'snapshot')).toBe(false); // replayed, not re-snapshotted
    expect(held.get(skus[0]!)!.available).toBe(77 - 1 + 9);
    expect(held.get(skus[1]!)!.version).toBe(expected[1]); // unchanged SKU kept from before
  });

  it('clients on different SKUs of one feed pack each get their own SKU, live and on resume', async () => {
    const skus = await seed(10);
    const feedKey = proc.views.keys.feed;
    const cursor = ((await redis.xrevrange(feedKey, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>)[0]![0];
    const subs = skus.map((sku) => {
      const c = client(gwA, '?channel=wms&token=dev-wms-key');
      c.send({ op: 'subscribe', skus: [sku] });
      return c;
    });
    for (const c of subs) await c.waitFor((f) => f.type === 'snapshot');
    // The processor packs a batch's states; which SKUs share a batch depends on partitions and
    // fetches, so the pack is written here, as the processor would write it.
    const top = Math.max(...(await Promise.all(skus.map(pgVersion))));
    const states = skus.map((sku, i) => ({ sku, available: 29 + i, onHand: 31 + i, reserved: 2, safetyStock: 0, version: top + 1 + i, deleted: false, commitTs: Date.now(), locations: [], channels: null, incoming: null }));
    await redis.xadd(feedKey, '*', ...encodeFeedPack(states));
    for (const [i, c] of subs.entries()) {
      await c.waitFor((f) => f.type === 'deltas' && (f.items as Array<{ sku: string; onHand?: number }>).some((it) => it.onHand === 31 + i));
      expect(new Set(c.items().map((it) => it.sku))).toEqual(new Set([skus[i]]));
      expect(c.items().at(-1)).toMatchObject({ sku: skus[i], onHand: 31 + i, available: 29 + i });
    }
    // A client resuming from before the pack gets the pack's states for its SKUs only.
    const late = client(gwB, '?channel=wms&token=dev-wms-key');
    late.send({ op: 'subscribe', skus: [skus[2], skus[7]], since: cursor });
    await waitUntil(async () => late.items().some((it) => it.onHand === 33) && late.items().some((it) => it.onHand === 38), 10_000, 'the resumed states');
    expect(new Set(late.items().map((it) => it.sku))).toEqual(new Set([skus[2], skus[7]]));
  });

  it('a cursor older than the trimmed feed gets a fresh snapshot instead', async () => {
    const skus = await seed(2);
    const feedKey = proc.views.keys.feed;
    const oldest = ((await redis.xrange(feedKey, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>)[0]![0];
    await pool.query(`UPDATE stock_levels SET on_hand = 11 WHERE sku = $1 AND location_id = 'WH-1'`, [skus[0]]);
    await waitUntil(async () => (await redis.xlen(feedKey)) > 3, 10_000, 'feed entries');
    await redis.xtrim(feedKey, 'MAXLEN', 1);
    const c = client(gwA, '');
    c.send({ op: 'subscribe', skus, since: oldest });
    const snap = await c.waitFor((f) => f.type === 'snapshot');
    expect((snap.items as Array<{ sku: string }>).map((i) => i.sku).sort()).toEqual([...skus].sort());
  });
});

describe('gateway: bad input and limits', () => {
  it('answers bad frames with error frames, changes nothing, and closes after repeated abuse', async () => {
    const [sku] = await seed(1);
    const c = client(gwA, '');
    c.send('{not json');
    c.send({ op: 'subscribe', skus: ['a', 'b', 'c', 'd', 'e', 'f'] }); // over the limit of 5
    await c.waitFor((f) => f.type === 'error' && f.code === 'too_many_skus');
    c.send({ op: 'subscribe', skus: [sku] });
    const snap = await c.waitFor((f) => f.type === 'snapshot');
    expect((snap.items as Array<{ sku: string }>).map((i) => i.sku)).toEqual([sku]); // the refused frame subscribed nothing
    expect(c.frames.filter((f) => f.type === 'error').map((f) => f.code)).toEqual(['invalid_json', 'too_many_skus']);
    c.send({ op: 'explode' });
    expect(await c.closed).toBe(4003);
    expect(c.frames.filter((f) => f.type === 'error').at(-1)).toMatchObject({ code: 'invalid_frame', message: expect.stringContaining('unknown op') });
    // The gateway is fine.
    const other = client(gwA, '');
    other.send({ op: 'ping', id: 'p1' });
    await other.waitFor((f) => f.type === 'pong' && f.id === 'p1');
  });

  it('closes a connection that sends an oversized frame with 1009', async () => {
    const c = client(gwA, '');
    await c.waitFor((f) => f.type === 'welcome');
    c.send({ op: 'subscribe', skus: ['x'.repeat(5000)] });
    expect(await c.closed).toBe(1009);
  });

  it('closes a slow consumer with 4008 instead of buffering without bound', async () => {
    const wms = client(gwA, '?channel=wms&token=dev-wms-key');
    await wms.waitFor((f) => f.type === 'welcome');
    wms.send({ op: 'subscribe', skus: '*' });
    await wms.waitFor((f) => f.type === 'subscribed');
    // Stop reading (ws pauses its socket): the socket's receive buffer fills, then the gateway's send buffer.
    wms.ws.pause();
    const big = JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ locationId: `L${i}`, onHand: 1, reserved: 0, safetyStock: 0, available: 1, version: 1 })));
    const feedKey = proc.views.keys.feed;
    for (let batch = 0; batch < 60; batch++) {
      const p = redis.pipeline();
      for (let i = 0; i < 200; i++) {
        p.xadd(feedKey, '*', 'sku', `SLOW-${batch}-${i}`, 'available', 1, 'onHand', 1, 'reserved', 0, 'safetyStock', 0, 'version', batch * 1000 + i + 1, 'deleted', 0, 'commitTs', Date.now(), 'locations', big);
      }
      await p.exec();
      if (![...gwA.hub.connections].some((conn) => conn.all)) break;
      await new Promise((r) => setTimeout(r, 30));
    }
    await waitUntil(async () => ![...gwA.hub.connections].some((conn) => conn.all), 15_000, 'the slow consumer to be dropped');
    wms.ws.resume();
    expect(await wms.closed).toBe(4008);
    const metrics = await gwA.metrics.closed.get();
    expect(metrics.values.find((v) => v.labels.code === '4008')?.value).toBeGreaterThanOrEqual(1);
  });

  it('HTTP: blank SKU lists are refused, and routes are exact', async () => {
    const blank = await fetch(`${gwA.url}/v1/stock?skus=,%20,`);
    expect(blank.status).toBe(400);
    expect(await blank.json()).toMatchObject({ error: 'invalid_query' });
    const shout = await fetch(`${gwA.url}/V1/STOCK/x`);
    expect(shout.status).toBe(404);
    expect(await shout.json()).toMatchObject({ error: 'not_found' });
    const tooLong = await fetch(`${gwA.url}/v1/stock/${'x'.repeat(129)}`);
    expect(tooLong.status).toBe(400);
    expect(await tooLong.json()).toMatchObject({ error: 'invalid_sku' });
  });
});
