/**
 * Inbound adjustments on the real services: Avro `StockAdjustment` messages on private topics
 * (one for the replay test, one for the rest) consumed by the inbound connector into Postgres,
 * dead letters on a private DLQ topic; then the real path end to end — a WMS receipt on
 * `stock.adjustments` → Postgres → Debezium → processor → Redis view → gateway → a storefront
 * WebSocket client — and the HTTP twin `POST /v1/adjustments` on an in-process gateway.
 * SKUs and locations are unique to the run and registered in the catalog by the test.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSchemaRegistry, loadAvroSchema, registerStockSchemas, type StockCodecs } from '../lib/avro-registry.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { TOPICS } from '../lib/topics.ts';
import { AvroRecordDecoder } from '../connectors/inbound/adapters/avro-decoder.ts';
import { AdjustmentStore, type AppliedResult } from '../connectors/inbound/adapters/pg-adjustments.ts';
import { startInboundConsumer, type InboundConsumer } from '../connectors/inbound/consumer.ts';
import { createInboundMetrics, type InboundMetrics } from '../connectors/inbound/metrics.ts';
import { StockClient, type StockItem } from '../gateway/client/sdk.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import type { AdjustmentKind, StockAdjustment } from '../schemas/generated/avro-types.ts';
import { cleanUp, deadLetterOf, isDeadLetterOf, testConfig, testKafka, unique, watchTopic, type Received, type TopicWatcher } from './helpers.ts';
import { startTestProcessor, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';
import { post } from './purchase-helpers.ts';

const config = testConfig();
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const pool = new pg.Pool({ connectionString: config.pg.url, max: 12 });
const kafka = testKafka(config);
const store = new AdjustmentStore({ pool });
const topic = unique('adj');
const replayTopic = unique('adj-replay');
const dlqTopic = unique('adj-dlq');
const L1 = unique('L1');
const L2 = unique('L2');
let codecs: StockCodecs;
let admin: Admin;
let producer: Producer;
let dlq: TopicWatcher;
let main: { consumer: InboundConsumer; metrics: InboundMetrics };
const running: InboundConsumer[] = [];
/** What this file leaves on the shared stack, removed in afterAll. */
const leftovers = { skus: [] as string[], groups: [] as string[], redisPrefixes: [] as string[], topics: [topic, replayTopic, dlqTopic] };

let seq = 0;
function adjustment(sku: string, kind: AdjustmentKind, quantity: number, more: Partial<StockAdjustment> = {}): StockAdjustment {
  seq++;
  return { adjustmentId: unique(`a${seq}`), sku, locationId: L1, kind, quantity, toLocationId: null, occurredAt: Date.now(), sourceSystem: 'wms-test', reference: `doc-${seq}`, expectedOnHand: null, expectedVersion: null, countedAt: null, ...more };
}

/** A product in the catalog with the given on hand per location (no row where undefined). */
async function product(stock: { l1?: number; l2?: number; reservedL1?: number } = {}): Promise<string> {
  const sku = unique('ADJ');
  leftovers.skus.push(sku);
  await pool.query(`INSERT INTO products (sku, name) VALUES ($1, 'adjustment test')`, [sku]);
  if (stock.l1 !== undefined) await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand, reserved) VALUES ($1, $2, $3, $4)`, [sku, L1, stock.l1, stock.reservedL1 ?? 0]);
  if (stock.l2 !== undefined) await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, $2, $3)`, [sku, L2, stock.l2]);
  return sku;
}

async function row(sku: string, locationId: string): Promise<{ onHand: number; version: number } | null> {
  const { rows } = await pool.query<{ on_hand: number; version: string }>(`SELECT on_hand, version FROM stock_levels WHERE sku = $1 AND location_id = $2`, [sku, locationId]);
  return rows[0] ? { onHand: rows[0].on_hand, version: Number(rows[0].version) } : null;
}

async function ledger(id: string): Promise<{ result: AppliedResult; received_via: string } | null> {
  const { rows } = await pool.query<{ result: AppliedResult; received_via: string }>(`SELECT result, received_via FROM applied_adjustments WHERE adjustment_id = $1`, [id]);
  return rows[0] ?? null;
}

async function waitApplied(id: string, timeoutMs = 20_000): Promise<AppliedResult> {
  let found: Awaited<ReturnType<typeof ledger>> = null;
  await waitUntil(async () => (found = await ledger(id)) !== null, timeoutMs, `adjustment ${id} to be applied`);
  return found!.result;
}

/** Produces one message (Avro-encoded adjustment, or raw bytes) keyed by its SKU; returns where it landed. */
async function send(to: string, value: StockAdjustment | Buffer, key?: string | null): Promise<{ partition: number; offset: string; value: Buffer }> {
  const bytes = Buffer.isBuffer(value) ? value : await codecs.stockAdjustment.encode(value);
  const k = key === undefined ? (Buffer.isBuffer(value) ? 'raw' : value.sku) : key;
  const [meta] = await producer.send({ topic: to, messages: [{ key: k, value: bytes }], acks: -1 });
  return { partition: meta!.partition, offset: meta!.baseOffset!, value: bytes };
}

async function counted(metrics: InboundMetrics, outcome: string): Promise<number> {
  return (await metrics.adjustments.get()).values.filter((v) => v.labels.outcome === outcome).reduce((a, v) => a + v.value, 0);
}

async function startConsumer(opts: { topic: string; groupId?: string; fromBeginning: boolean; metrics?: InboundMetrics }): Promise<{ consumer: InboundConsumer; metrics: InboundMetrics }> {
  const metrics = opts.metrics ?? createInboundMetrics({ defaults: false });
  const groupId = opts.groupId ?? unique('adj-grp');
  leftovers.groups.push(groupId);
  const consumer = await startInboundConsumer({
    kafka,
    store,
    decoder: new AvroRecordDecoder({ registry: createSchemaRegistry(config.registry.url), readerSchema: loadAvroSchema('StockAdjustment') }),
    logger,
    metrics,
    groupId,
    fromBeginning: opts.fromBeginning,
    batchMax: 50,
    topics: { adjustments: opts.topic, dlq: dlqTopic },
  });
  running.push(consumer);
  await consumer.joined;
  return { consumer, metrics };
}

beforeAll(async () => {
  codecs = await registerStockSchemas(config.registry.url);
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 3 },
      { topic: replayTopic, numPartitions: 1 },
      { topic: dlqTopic, numPartitions: 1 },
    ],
  });
  await pool.query(`INSERT INTO locations (location_id, name) VALUES ($1, 'adjustment test 1'), ($2, 'adjustment test 2')`, [L1, L2]);
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  dlq = await watchTopic(kafka, dlqTopic, { fromBeginning: true, binary: true });
  main = await startConsumer({ topic, fromBeginning: true });
});

afterAll(async () => {
  for (const c of running) await c.stop().catch(() => undefined);
  await dlq?.stop();
  await producer?.disconnect();
  await admin?.disconnect();
  await pool.end();
  await cleanUp(config, { ...leftovers, groups: [...new Set(leftovers.groups)] });
});

describe('exactly once', () => {
  it('duplicates and a replay of the whole topic change nothing', async () => {
    const sku = await product({ l1: 10 });
    const receipt = adjustment(sku, 'RECEIPT', 5);
    const pick = adjustment(sku, 'PICK', 3);
    const groupId = unique('replay-grp');
    const first = await startConsumer({ topic: replayTopic, groupId, fromBeginning: true });
    for (const a of [receipt, receipt, pick, pick]) await send(replayTopic, a);
    await waitApplied(pick.adjustmentId);
    await waitUntil(async () => (await counted(first.metrics, 'duplicate')) === 2, 20_000, 'two duplicates');
    expect(await counted(first.metrics, 'applied')).toBe(2);
    const after = await row(sku, L1);
    expect(after?.onHand).toBe(12);

    // Replay: the same group from the earliest offset.
    await first.consumer.stop();
    await admin.resetOffsets({ groupId, topic: replayTopic, earliest: true });
    const again = await startConsumer({ topic: replayTopic, groupId, fromBeginning: true });
    await waitUntil(async () => (await counted(again.metrics, 'duplicate')) === 4, 20_000, 'the replay to see four duplicates');
    expect(await counted(again.metrics, 'applied')).toBe(0);
    expect(await row(sku, L1)).toEqual(after); // same figure, same version: not even rewritten
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM applied_adjustments WHERE sku = $1`, [sku]);
    expect(rows[0].n).toBe(2);
    await again.consumer.stop();
  });

  it('one adjustment sent 20 times at once, through concurrent transactions, applies once', async () => {
    const sku = await product({ l1: 1 });
    // L2 has no row yet: the concurrent transactions race to insert it.
    const a = adjustment(sku, 'RECEIPT', 4, { locationId: L2 });
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => store.apply([{ adjustment: a, via: `test:${i}` }])));
    const kinds = outcomes.map(([o]) => o!.outcome);
    expect(kinds.filter((k) => k === 'applied')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'duplicate')).toHaveLength(19);
    const results = outcomes.map(([o]) => (o as { result: AppliedResult }).result);
    for (const r of results) expect(r).toEqual(results[0]);
    expect(results[0]!.locations).toEqual([{ locationId: L2, onHandBefore: 0, onHandAfter: 4 }]);
    expect((await row(sku, L2))?.onHand).toBe(4);
    // The same id with another payload: a conflict, nothing changes.
    const [conflict] = await store.apply([{ adjustment: { ...a, quantity: 5 }, via: 'test' }]);
    expect(conflict).toMatchObject({ outcome: 'refused', code: 'adjustment_id_conflict' });
    expect((await row(sku, L2))?.onHand).toBe(4);
  });
});

describe('count versus delta', () => {
  it('deltas move on hand, a count sets it, in topic order', async () => {
    const sku = await product({ l1: 10 });
    const steps: Array<[AdjustmentKind, number]> = [
      ['RECEIPT', 5],
      ['PICK', 3],
      ['COUNT', 20],
      ['DAMAGE', 1],
      ['RETURN', 2],
      ['COUNT', 7],
    ];
    const sent = steps.map(([kind, q]) => adjustment(sku, kind, q));
    for (const a of sent) await send(topic, a);
    const results = [];
    for (const a of sent) results.push(await waitApplied(a.adjustmentId));
    expect(results.map((r) => [r.locations[0]!.onHandBefore, r.locations[0]!.onHandAfter])).toEqual([
      [10, 15],
      [15, 12],
      [12, 20],
      [20, 19],
      [19, 21],
      [21, 7],
    ]);
    expect((await row(sku, L1))?.onHand).toBe(7);
    // Versions grow with the writes and the last adjustment's version is the row's.
    const versions = results.map((r) => r.version);
    expect([...versions].sort((x, y) => x - y)).toEqual(versions);
    expect(versions[5]).toBe((await row(sku, L1))?.version);
  });

  it('a receipt creates the row of a known product at a known location', async () => {
    const sku = await product();
    const a = adjustment(sku, 'RECEIPT', 9, { locationId: L2 });
    await send(topic, a);
    expect((await waitApplied(a.adjustmentId)).locations).toEqual([{ locationId: L2, onHandBefore: 0, onHandAfter: 9 }]);
    expect((await row(sku, L2))?.onHand).toBe(9);
  });
});

describe('transfers', () => {
  it('move units between two locations in one transaction (one Postgres transaction id in CDC)', async () => {
    const cdc = await watchTopic(kafka, TOPICS.cdcStockLevels);
    try {
      const sku = await product({ l1: 10 });
      const t = adjustment(sku, 'TRANSFER', 4, { toLocationId: L2 });
      await send(topic, t);
      const result = await waitApplied(t.adjustmentId);
      expect(result.locations).toEqual([
        { locationId: L1, onHandBefore: 10, onHandAfter: 6 },
        { locationId: L2, onHandBefore: 0, onHandAfter: 4 },
      ]);
      expect((await row(sku, L1))?.onHand).toBe(6);
      expect((await row(sku, L2))?.onHand).toBe(4);
      const events = await Promise.all(
        [L1, L2].map((loc) =>
          cdc.waitFor((m) => {
            if (m.key !== JSON.stringify({ sku })) return false;
            const v = JSON.parse(m.value ?? '{}') as { after?: { location_id?: string; on_hand?: number } };
            return v.after?.location_id === loc && v.after.on_hand === (loc === L1 ? 6 : 4);
          }),
        ),
      );
      const txIds = events.map((e) => (JSON.parse(e.value!) as { source: { txId: number } }).source.txId);
      expect(txIds[0]).toBe(txIds[1]);
    } finally {
      await cdc.stop();
    }
  });

  it('transfers in both directions at once: no deadlock, no unit created or lost', async () => {
    const sku = await product({ l1: 100, l2: 100 });
    const moves = Array.from({ length: 40 }, (_, i) => adjustment(sku, 'TRANSFER', 1 + (i % 3), i % 2 ? { locationId: L2, toLocationId: L1 } : { toLocationId: L2 }));
    const outcomes = await Promise.all(moves.map((m) => store.apply([{ adjustment: m, via: 'test' }])));
    expect(outcomes.map(([o]) => o!.outcome)).toEqual(moves.map(() => 'applied'));
    const [a, b] = [await row(sku, L1), await row(sku, L2)];
    expect(a!.onHand + b!.onHand).toBe(200);
    const net = moves.reduce((n, m) => n + (m.locationId === L1 ? -m.quantity : m.quantity), 0);
    expect(a!.onHand).toBe(100 + net);
  });
});

describe('invalid adjustments go to the DLQ and change nothing', () => {
  it('undecodable, invalid, unknown, negative, below reserved, conflicting, mis-keyed: each dead-lettered with its reason', async () => {
    const sku = await product({ l1: 10, reservedL1: 4 });
    const other = await product({ l1: 10 });
    const before = { l1: await row(sku, L1), other: await row(other, L1) };
    const ok = adjustment(sku, 'RECEIPT', 1);
    const delta = await codecs.stockDelta.encode({
      sku,
      channels: null,
      available: 1,
      previousAvailable: null,
      onHand: 1,
      reserved: 0,
      safetyStock: 0,
      version: 1,
      deleted: false,
      commitTs: Date.now(),
      locationId: null,
      location: null,
    });
    const cases: Array<[string, StockAdjustment | Buffer, (string | null)?]> = [
      ['undecodable', Buffer.from('{"sku":"not avro"}')],
      ['undecodable', Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 0x02])], // unknown schema id
      ['undecodable', delta, sku], // a StockDelta: cannot be read as a StockAdjustment
      ['invalid', adjustment(sku, 'PICK', 0)],
      ['invalid', adjustment(sku, 'TRANSFER', 1)], // no target
      ['unknown_sku', adjustment(unique('NOPE'), 'RECEIPT', 1)],
      ['unknown_location', adjustment(sku, 'RECEIPT', 1, { locationId: unique('NOWHERE') })],
      ['unknown_location', adjustment(sku, 'TRANSFER', 1, { toLocationId: unique('NOWHERE') })],
      // 11 on hand (10 and the receipt `ok`), 4 reserved:
      ['negative_on_hand', adjustment(sku, 'PICK', 12)],
      ['negative_on_hand', adjustment(sku, 'TRANSFER', 12, { toLocationId: L2 })],
      ['below_reserved', adjustment(sku, 'DAMAGE', 8)],
      ['below_reserved', adjustment(sku, 'COUNT', 3)],
      ['key_mismatch', adjustment(other, 'RECEIPT', 1), sku],
      ['key_mismatch', adjustment(other, 'RECEIPT', 1), null],
    ];
    await send(topic, ok);
    await waitApplied(ok.adjustmentId);
    const conflict = { ...ok, quantity: 2 };
    cases.push(['adjustment_id_conflict', conflict]);
    const sent: Array<{ code: string; partition: number; offset: string; value: Buffer; key: string | null; id?: string }> = [];
    for (const [code, value, key] of cases) {
      const k = key === undefined ? (Buffer.isBuffer(value) ? 'raw' : value.sku) : key;
      const at = await send(topic, value, k);
      sent.push({ code, ...at, key: k, ...(Buffer.isBuffer(value) ? {} : { id: value.adjustmentId }) });
    }
    const marker = adjustment(sku, 'RECEIPT', 2);
    await send(topic, marker);

    const letters: Received[] = [];
    for (const s of sent) {
      letters.push(
        await dlq.waitFor((m) => isDeadLetterOf(m, { topic, partition: s.partition, offset: s.offset })),
      );
    }
    for (const [i, m] of letters.entries()) {
      const s = sent[i]!;
      const d = deadLetterOf(m);
      expect(d.code, `${s.code}: ${d.reason}`).toBe(s.code);
      expect(d.processor).toBeTruthy();
      expect(d.failedAt.getTime()).toBeGreaterThan(0);
      expect(Buffer.from(m.value!, 'binary').equals(s.value), 'value untouched').toBe(true);
      expect(m.key).toBe(s.key);
      if (s.id) expect(d.adjustmentId).toBe(s.id);
    }
    expect(deadLetterOf(letters[3]!).reason).toMatch(/^invalid: quantity: /);
    expect(deadLetterOf(letters[4]!).reason).toMatch(/^invalid: toLocationId: /);

    // Nothing changed but the two valid receipts; no refused id was recorded.
    await waitApplied(marker.adjustmentId);
    const after = await row(sku, L1);
    expect(after!.onHand).toBe(before.l1!.onHand + 1 + 2);
    expect(await row(sku, L2)).toBeNull();
    expect(await row(other, L1)).toEqual(before.other);
    const ids = sent.flatMap((s) => (s.id && s.code !== 'adjustment_id_conflict' ? [s.id] : []));
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM applied_adjustments WHERE adjustment_id = ANY($1)`, [ids]);
    expect(rows[0].n).toBe(0);
    expect((await ledger(ok.adjustmentId))!.result.locations[0]!.onHandAfter).toBe(before.l1!.onHand + 1);
  });

  it('a refused adjustment applies when sent again after its cause is fixed', async () => {
    const sku = await product({ l1: 1 });
    const pick = adjustment(sku, 'PICK', 3);
    const first = await send(topic, pick);
    await dlq.waitFor((m) => isDeadLetterOf(m, first));
    await pool.query(`UPDATE stock_levels SET on_hand = 5 WHERE sku = $1`, [sku]);
    await send(topic, pick);
    expect((await waitApplied(pick.adjustmentId)).locations).toEqual([{ locationId: L1, onHandBefore: 5, onHandAfter: 2 }]);
  });
});

describe('end to end and the HTTP twin', () => {
  const prefix = unique('adje2e').replaceAll('-', '').slice(0, 32);
  const gwConfig = loadConfig({ ...process.env, REDIS_PREFIX: prefix, GATEWAY_API_KEYS: 'test-wms:test-wms-key-1:wms+adjustments:write;test-erp:test-erp-key-1:erp+adjustments:write;test-sf:test-sf-key-1:storefront;test-feed:test-feed-key-1:wms' });
  const redis = createRedis(config.redis);
  let proc: TestProcessor;
  let gateway: GatewayService;
  let client: StockClient | undefined;

  beforeAll(async () => {
    const groupId = unique('adj-proc');
    leftovers.redisPrefixes.push(prefix);
    leftovers.groups.push(groupId);
    leftovers.skus.push(`${prefix}-probe`);
    proc = await startTestProcessor({ config, kafka: testKafka(config), redis, prefix, groupId, fromBeginning: false });
    await waitProcessorLive(pool, proc.views, `${prefix}-probe`);
    gateway = await startGatewayService(gwConfig, logger, { port: 0, metricsDefaults: false });
  });

  afterAll(async () => {
    client?.close();
    await gateway?.stop();
    await proc?.processor.stop();
    redis.disconnect();
  });

  it('a WMS receipt on stock.adjustments reaches a storefront WebSocket client as higher availability', async () => {
    // The connector on the platform's topic, a group of its own, from the topic's end: probe
    // until it is reading (a fresh group starts at the end once its first fetch resolves it).
    await startConsumer({ topic: TOPICS.stockAdjustments, fromBeginning: false });
    const probeSku = await product({ l1: 0 });
    await waitUntil(
      async () => {
        const probe = adjustment(probeSku, 'COUNT', 1);
        await send(TOPICS.stockAdjustments, probe);
        await sleep(300);
        return (await ledger(probe.adjustmentId)) !== null;
      },
      30_000,
      'the inbound connector to read stock.adjustments',
    );

    const sku = await product({ l1: 3 });
    const items: Array<{ item: StockItem; at: number }> = [];
    client = new StockClient({ url: `${gateway.url.replace('http', 'ws')}/v1/stream`, channel: 'storefront', WebSocket });
    client.on('item', (item) => items.push({ item, at: Date.now() }));
    client.subscribe([sku]);
    await waitUntil(async () => client!.get(sku)?.available === 3, 20_000, `the storefront client to see ${sku} with 3 available`);

    const receipt = adjustment(sku, 'RECEIPT', 7, { sourceSystem: 'wms-e2e' });
    const producedAt = Date.now();
    await send(TOPICS.stockAdjustments, receipt);
    await waitUntil(async () => client!.get(sku)?.available === 10, 20_000, `the storefront client to see ${sku} rise to 10`);
    const seen = items.find((i) => i.item.sku === sku && i.item.available === 10)!;
    const latencyMs = seen.at - producedAt;
    const applied = await waitApplied(receipt.adjustmentId);
    expect(seen.item.version).toBe(applied.version);
    process.stderr.write(`[adjustments e2e] stock.adjustments -> storefront WebSocket client: ${latencyMs} ms\n`);
    // The target: within a second. Measured 27-43 ms on the 2-core development machine
    // (with other test runs sharing it), so the target itself is a generous bound.
    expect(latencyMs).toBeLessThan(1000);
  });

  it('POST /v1/adjustments applies once, shares the ledger with the topic, and refuses as documented', async () => {
    const sku = await product({ l1: 10 });
    const auth = { Authorization: 'Bearer test-wms-key-1' };
    const body = adjustment(sku, 'RECEIPT', 5, { reference: null });
    const first = await post(gateway.url, '/v1/adjustments', body, auth);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ status: 'applied', adjustmentId: body.adjustmentId, sku, kind: 'RECEIPT', locations: [{ locationId: L1, onHandBefore: 10, onHandAfter: 15 }] });
    expect((await ledger(body.adjustmentId))!.received_via).toBe('http:test-wms');
    const again = await post(gateway.url, '/v1/adjustments', body, { Authorization: 'Bearer test-erp-key-1' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, status: 'duplicate' });

    // The same adjustment on the topic: a duplicate there too.
    const dupsBefore = await counted(main.metrics, 'duplicate');
    await send(topic, body);
    await waitUntil(async () => (await counted(main.metrics, 'duplicate')) > dupsBefore, 20_000, 'the topic copy to count as a duplicate');
    expect((await row(sku, L1))?.onHand).toBe(15);

    const refusals: Array<[unknown, Record<string, string>, number, string]> = [
      [{ ...body, quantity: 6 }, auth, 409, 'adjustment_id_conflict'],
      [adjustment(sku, 'PICK', 16), auth, 409, 'negative_on_hand'],
      [adjustment(unique('NOPE'), 'RECEIPT', 1), auth, 404, 'unknown_sku'],
      [adjustment(sku, 'RECEIPT', 1, { locationId: unique('NOWHERE') }), auth, 404, 'unknown_location'],
      [{ ...adjustment(sku, 'RECEIPT', 1), extra: true }, auth, 400, 'invalid_body'],
      ['{"adjustmentId":', auth, 400, 'invalid_json'],
      [adjustment(sku, 'RECEIPT', 1), {}, 401, 'unauthorized'],
      [adjustment(sku, 'RECEIPT', 1), { Authorization: 'Bearer test-sf-key-1' }, 403, 'forbidden'],
      // A feed credential (wms channel, no adjustments:write) reads; it does not write.
      [adjustment(sku, 'RECEIPT', 1), { Authorization: 'Bearer test-feed-key-1' }, 403, 'forbidden'],
      [adjustment(sku, 'RECEIPT', 1), { Authorization: 'Bearer not-a-key-at-all' }, 401, 'unauthorized'],
    ];
    for (const [b, headers, status, error] of refusals) {
      const r = await post(gateway.url, '/v1/adjustments', b, headers);
      expect(r.status, `${error}: ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.body).toMatchObject({ error });
    }
    expect((await row(sku, L1))?.onHand).toBe(15);
  });
});
