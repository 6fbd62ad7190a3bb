/**
 * Compare-and-set on inbound adjustments (docs/connectors.md#compare-and-set) on the real
 * services: `expectedOnHand` / `expectedVersion` over `POST /v1/adjustments` (an in-process
 * gateway) and over Kafka (the inbound connector on a private topic, dead letters on a private
 * DLQ topic), writers racing with the same expectation, and producers on the schema without the
 * two fields. SKUs and locations are unique to the run and registered in the catalog by the test.
 */
import type { Admin, Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchemaRegistry, loadAvroSchema, registerAvroSchema, registerStockSchemas, type StockCodecs } from '../lib/avro-registry.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { AvroRecordDecoder } from '../connectors/inbound/adapters/avro-decoder.ts';
import { AdjustmentStore, type AppliedResult } from '../connectors/inbound/adapters/pg-adjustments.ts';
import { startInboundConsumer, type InboundConsumer } from '../connectors/inbound/consumer.ts';
import { createInboundMetrics } from '../connectors/inbound/metrics.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import type { AdjustmentKind, StockAdjustment } from '../schemas/generated/avro-types.ts';
import { cleanUp, deadLetterOf, isDeadLetterOf, testConfig, testKafka, unique, watchTopic, type TopicWatcher } from './helpers.ts';
import { waitUntil } from './processor-helpers.ts';
import { post, type HttpReply } from './purchase-helpers.ts';

const config = testConfig();
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const pool = new pg.Pool({ connectionString: config.pg.url, max: 16 });
const kafka = testKafka(config);
const registry = createSchemaRegistry(config.registry.url);
const topic = unique('adj-cas');
const dlqTopic = unique('adj-cas-dlq');
const L1 = unique('CAS-L1');
const L2 = unique('CAS-L2');
const prefix = unique('adjcas').replaceAll('-', '').slice(0, 32);
const gwConfig = loadConfig({ ...process.env, REDIS_PREFIX: prefix, GATEWAY_API_KEYS: 'cas-wms:cas-wms-key-1:wms+adjustments:write;cas-erp:cas-erp-key-1:erp+adjustments:write' });
const WMS = { Authorization: 'Bearer cas-wms-key-1' };
const ERP = { Authorization: 'Bearer cas-erp-key-1' };
let codecs: StockCodecs;
let admin: Admin;
let producer: Producer;
let dlq: TopicWatcher;
let consumer: InboundConsumer;
let gateway: GatewayService;
const leftovers = { skus: [] as string[], groups: [] as string[], redisPrefixes: [prefix], topics: [topic, dlqTopic] };

let seq = 0;
function adjustment(sku: string, kind: AdjustmentKind, quantity: number, more: Partial<StockAdjustment> = {}): StockAdjustment {
  seq++;
  return {
    adjustmentId: unique(`cas${seq}`),
    sku,
    locationId: L1,
    kind,
    quantity,
    toLocationId: null,
    occurredAt: Date.now(),
    sourceSystem: 'cas-test',
    reference: null,
    expectedOnHand: null,
    expectedVersion: null,
    countedAt: null,
    ...more,
  };
}

async function product(stock: { l1?: number; l2?: number; reservedL1?: number } = {}): Promise<string> {
  const sku = unique('CAS');
  leftovers.skus.push(sku);
  await pool.query(`INSERT INTO products (sku, name) VALUES ($1, 'cas test')`, [sku]);
  if (stock.l1 !== undefined) await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand, reserved) VALUES ($1, $2, $3, $4)`, [sku, L1, stock.l1, stock.reservedL1 ?? 0]);
  if (stock.l2 !== undefined) await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, $2, $3)`, [sku, L2, stock.l2]);
  return sku;
}

/** What a writer reads before it decides: the row's figures. */
async function row(sku: string, locationId = L1): Promise<{ onHand: number; reserved: number; version: number } | null> {
  const { rows } = await pool.query<{ on_hand: number; reserved: number; version: string }>(
    `SELECT on_hand, reserved, version FROM stock_levels WHERE sku = $1 AND location_id = $2`,
    [sku, locationId],
  );
  return rows[0] ? { onHand: rows[0].on_hand, reserved: rows[0].reserved, version: Number(rows[0].version) } : null;
}

async function recorded(ids: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ adjustment_id: string }>(`SELECT adjustment_id FROM applied_adjustments WHERE adjustment_id = ANY($1::text[])`, [ids]);
  return rows.map((r) => r.adjustment_id);
}

async function ledgerResult(id: string): Promise<AppliedResult | null> {
  const { rows } = await pool.query<{ result: AppliedResult }>(`SELECT result FROM applied_adjustments WHERE adjustment_id = $1`, [id]);
  return rows[0]?.result ?? null;
}

async function send(value: StockAdjustment, encode: (v: StockAdjustment) => Promise<Buffer> = (v) => codecs.stockAdjustment.encode(v)) {
  const [meta] = await producer.send({ topic, messages: [{ key: value.sku, value: await encode(value) }], acks: -1 });
  return { topic, partition: meta!.partition, offset: meta!.baseOffset! };
}

/** Where a message sent to the connector ended: applied (in the ledger) or dead-lettered (its reason). */
async function fate(id: string, at: { topic: string; partition: number; offset: string }): Promise<{ applied: true } | { applied: false; reason: string }> {
  let out: { applied: true } | { applied: false; reason: string } | null = null;
  await waitUntil(
    async () => {
      if ((await recorded([id])).length === 1) out = { applied: true };
      else {
        const letter = dlq.messages.find((m) => isDeadLetterOf(m, at));
        if (letter) out = { applied: false, reason: deadLetterOf(letter).reason };
      }
      return out !== null;
    },
    20_000,
    `adjustment ${id} to be applied or dead-lettered`,
  );
  return out!;
}

beforeAll(async () => {
  codecs = await registerStockSchemas(config.registry.url);
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 2 },
      { topic: dlqTopic, numPartitions: 1 },
    ],
  });
  await pool.query(`INSERT INTO locations (location_id, name) VALUES ($1, 'cas test 1'), ($2, 'cas test 2')`, [L1, L2]);
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  dlq = await watchTopic(kafka, dlqTopic, { fromBeginning: true, binary: true });
  const groupId = unique('adj-cas-grp');
  leftovers.groups.push(groupId);
  consumer = await startInboundConsumer({
    kafka,
    store: new AdjustmentStore({ pool }),
    decoder: new AvroRecordDecoder({ registry: createSchemaRegistry(config.registry.url), readerSchema: loadAvroSchema('StockAdjustment') }),
    logger,
    metrics: createInboundMetrics({ defaults: false }),
    groupId,
    fromBeginning: true,
    batchMax: 50,
    topics: { adjustments: topic, dlq: dlqTopic },
  });
  await consumer.joined;
  gateway = await startGatewayService(gwConfig, logger, { port: 0, metricsDefaults: false });
});

afterAll(async () => {
  await consumer?.stop().catch(() => undefined);
  await gateway?.stop();
  await dlq?.stop();
  await producer?.disconnect();
  await admin?.disconnect();
  await pool.end();
  await cleanUp(config, { ...leftovers, groups: [...new Set(leftovers.groups)] });
});

describe('POST /v1/adjustments with an expectation', () => {
  it('applies when the expected on hand and version hold', async () => {
    const sku = await product({ l1: 10 });
    const seen = (await row(sku))!;
    const a = adjustment(sku, 'PICK', 4, { expectedOnHand: 10, expectedVersion: seen.version });
    const r = await post(gateway.url, '/v1/adjustments', a, WMS);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ status: 'applied', locations: [{ locationId: L1, onHandBefore: 10, onHandAfter: 6 }] });
    const after = (await row(sku))!;
    expect(after.onHand).toBe(6);
    expect(r.body.version).toBe(after.version);
    // The same body again is a duplicate even though its expectation no longer holds.
    const again = await post(gateway.url, '/v1/adjustments', a, WMS);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...r.body, status: 'duplicate' });
  });

  it('answers 409 stock_changed with the current state and changes nothing; the corrected retry with the same id applies', async () => {
    const sku = await product({ l1: 10, reservedL1: 3 });
    const before = (await row(sku))!;
    const refusals: Array<[Partial<StockAdjustment>, string[]]> = [
      [{ expectedOnHand: 9 }, ['expectedOnHand']],
      [{ expectedVersion: before.version - 1 }, ['expectedVersion']],
      [{ expectedOnHand: 10, expectedVersion: before.version + 1 }, ['expectedVersion']],
      [{ expectedOnHand: 11, expectedVersion: before.version + 1 }, ['expectedOnHand', 'expectedVersion']],
    ];
    const a = adjustment(sku, 'PICK', 2);
    for (const [more, mismatched] of refusals) {
      const r = await post(gateway.url, '/v1/adjustments', { ...a, ...more }, WMS);
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect(r.body).toMatchObject({
        error: 'stock_changed',
        details: {
          adjustmentId: a.adjustmentId,
          sku,
          locationId: L1,
          onHand: 10,
          reserved: 3,
          version: before.version,
          expectedOnHand: more.expectedOnHand ?? null,
          expectedVersion: more.expectedVersion ?? null,
          mismatched,
        },
      });
      expect(String(r.body.message)).toMatch(/changed: expected/);
    }
    expect(await row(sku)).toEqual(before); // same figure, same version: not even rewritten
    expect(await recorded([a.adjustmentId])).toEqual([]);

    // The sender reads the current figures from the refusal and retries the same id.
    const retry = await post(gateway.url, '/v1/adjustments', { ...a, expectedOnHand: 10, expectedVersion: before.version }, ERP);
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect((await row(sku))!.onHand).toBe(8);
  });

  it('a missing row is on hand 0 with no version; a transfer checks its source', async () => {
    const sku = await product({ l1: 5 });
    const noRow = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'RECEIPT', 3, { locationId: L2, expectedVersion: 1 }), WMS);
    expect(noRow.status).toBe(409);
    expect(noRow.body).toMatchObject({ error: 'stock_changed', details: { onHand: 0, version: null } });
    expect(await row(sku, L2)).toBeNull();
    const created = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'RECEIPT', 3, { locationId: L2, expectedOnHand: 0 }), WMS);
    expect(created.status).toBe(201);

    const source = (await row(sku))!;
    const target = (await row(sku, L2))!;
    const wrong = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'TRANSFER', 2, { toLocationId: L2, expectedOnHand: target.onHand, expectedVersion: target.version }), WMS);
    expect(wrong.status).toBe(409);
    expect(wrong.body).toMatchObject({ error: 'stock_changed', details: { locationId: L1, onHand: 5, version: source.version } });
    const moved = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'TRANSFER', 2, { toLocationId: L2, expectedOnHand: 5, expectedVersion: source.version }), WMS);
    expect(moved.status, JSON.stringify(moved.body)).toBe(201);
    expect([(await row(sku))!.onHand, (await row(sku, L2))!.onHand]).toEqual([3, 5]);
  });

  it('refuses a malformed expectation with 400 invalid_body naming the field', async () => {
    const sku = await product({ l1: 5 });
    const before = await row(sku);
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ expectedOnHand: -1 }, 'expectedOnHand'],
      [{ expectedOnHand: 2.5 }, 'expectedOnHand'],
      [{ expectedOnHand: '5' }, 'expectedOnHand'],
      [{ expectedVersion: -3 }, 'expectedVersion'],
      [{ expectedVersion: '17' }, 'expectedVersion'],
      [{ expectedVersion: 1e300 }, 'expectedVersion'],
    ];
    for (const [more, field] of bad) {
      const r = await post(gateway.url, '/v1/adjustments', { ...adjustment(sku, 'RECEIPT', 1), ...more }, WMS);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid_body', details: { field } });
    }
    expect(await row(sku)).toEqual(before);
  });
});

describe('stock.adjustments with an expectation', () => {
  it('a mismatch is dead-lettered with the reason and changes nothing; an invalid one as invalid; the corrected retry applies', async () => {
    const sku = await product({ l1: 20 });
    const before = (await row(sku))!;
    const stale = adjustment(sku, 'DAMAGE', 5, { expectedOnHand: 19 });
    const staleAt = await send(stale);
    const badVersion = adjustment(sku, 'DAMAGE', 5, { expectedVersion: before.version + 1000 });
    const badVersionAt = await send(badVersion);
    const invalid = adjustment(sku, 'DAMAGE', 5, { expectedOnHand: -1 });
    const invalidAt = await send(invalid);

    expect(await fate(stale.adjustmentId, staleAt)).toEqual({ applied: false, reason: `stock_changed: stock of ${sku} at ${L1} changed: expected on hand 19, is 20` });
    expect(await fate(badVersion.adjustmentId, badVersionAt)).toEqual({
      applied: false,
      reason: `stock_changed: stock of ${sku} at ${L1} changed: expected version ${before.version + 1000}, is ${before.version}`,
    });
    const inv = await fate(invalid.adjustmentId, invalidAt);
    expect(inv.applied).toBe(false);
    expect((inv as { reason: string }).reason).toMatch(/^invalid: expectedOnHand: /);
    const letter = deadLetterOf(dlq.messages.find((m) => isDeadLetterOf(m, staleAt))!);
    expect(letter.code).toBe('stock_changed');
    expect(letter.adjustmentId).toBe(stale.adjustmentId);

    expect(await row(sku)).toEqual(before);
    expect(await recorded([stale.adjustmentId, badVersion.adjustmentId, invalid.adjustmentId])).toEqual([]);

    // The same id, corrected, applies: a refusal recorded nothing.
    const fixedAt = await send({ ...stale, expectedOnHand: 20 });
    expect(await fate(stale.adjustmentId, fixedAt)).toEqual({ applied: true });
    expect((await row(sku))!.onHand).toBe(15);
  });

  it('a producer on the schema without the fields keeps working (BACKWARD), unconditionally', async () => {
    const current = loadAvroSchema('StockAdjustment') as { fields: Array<{ name: string }> };
    const old = { ...current, fields: current.fields.filter((f) => f.name !== 'expectedOnHand' && f.name !== 'expectedVersion') };
    const subject = `${topic}-value`;
    const oldId = await registerAvroSchema(registry, config.registry.url, subject, old);
    // The registry's BACKWARD check of the new schema against the old one.
    const newId = await registerAvroSchema(registry, config.registry.url, subject, current);
    expect(newId).not.toBe(oldId);

    const sku = await product({ l1: 7 });
    const { expectedOnHand: _o, expectedVersion: _v, ...oldRecord } = adjustment(sku, 'RECEIPT', 3);
    const at = await send(oldRecord as StockAdjustment, (v) => registry.encode(oldId, v));
    expect(await fate(oldRecord.adjustmentId, at)).toEqual({ applied: true });
    const after = (await row(sku))!;
    expect(after.onHand).toBe(10);
    // A new producer on the same subject, with an expectation, right after.
    const cas = adjustment(sku, 'PICK', 1, { expectedOnHand: 10, expectedVersion: after.version });
    expect(await fate(cas.adjustmentId, await send(cas, (v) => registry.encode(newId, v)))).toEqual({ applied: true });
    expect((await row(sku))!.onHand).toBe(9);
  });
});

describe('races between writers with the same expectation', () => {
  it('over HTTP: of writers who read the same version and send at once, exactly one applies each round', async () => {
    const start = 100;
    const sku = await product({ l1: start });
    let expectedOnHand = start;
    for (let round = 0; round < 8; round++) {
      const writers = 2 + (round % 3); // 2, 3 or 4 writers
      const seen = await Promise.all(Array.from({ length: writers }, () => row(sku)));
      const sent = seen.map((s, i) => adjustment(sku, 'PICK', 1 + i, { expectedVersion: s!.version }));
      const replies: HttpReply[] = await Promise.all(sent.map((a, i) => post(gateway.url, '/v1/adjustments', a, i % 2 ? ERP : WMS)));
      const statuses = replies.map((r) => r.status);
      expect(statuses.filter((s) => s === 201), JSON.stringify(replies.map((r) => r.body))).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(writers - 1);
      const winner = sent[statuses.indexOf(201)]!;
      const applied = replies[statuses.indexOf(201)]!;
      const now = (await row(sku))!;
      expectedOnHand -= winner.quantity;
      expect(now.onHand).toBe(expectedOnHand);
      for (const r of replies.filter((x) => x.status === 409)) {
        // The losers are told the state the winner left.
        expect(r.body).toMatchObject({ error: 'stock_changed', details: { onHand: now.onHand, version: now.version, expectedVersion: seen[0]!.version } });
        expect(applied.body.version).toBe(now.version);
      }
      expect(await recorded(sent.map((a) => a.adjustmentId))).toEqual([winner.adjustmentId]);
    }
  });

  it('over Kafka, two writers in one partition: exactly one applies, the other is dead-lettered', async () => {
    const sku = await product({ l1: 30 });
    let sameBatch = 0;
    for (let round = 0; round < 4; round++) {
      const seen = (await row(sku))!;
      const a = adjustment(sku, 'PICK', 1, { expectedVersion: seen.version });
      const b = adjustment(sku, 'PICK', 2, { expectedVersion: seen.version });
      // One send: adjacent offsets, so the connector usually decides both in one transaction.
      const [meta] = await producer.send({
        topic,
        acks: -1,
        messages: [
          { key: sku, value: await codecs.stockAdjustment.encode(a) },
          { key: sku, value: await codecs.stockAdjustment.encode(b) },
        ],
      });
      const first = BigInt(meta!.baseOffset!);
      const fates = [
        await fate(a.adjustmentId, { topic, partition: meta!.partition, offset: String(first) }),
        await fate(b.adjustmentId, { topic, partition: meta!.partition, offset: String(first + 1n) }),
      ];
      // Kafka order within the partition: the first applies, the second finds the version gone.
      expect(fates[0]).toEqual({ applied: true });
      expect(fates[1]).toMatchObject({ applied: false });
      expect((fates[1] as { reason: string }).reason).toMatch(/^stock_changed: .*expected version \d+, (is \d+|an earlier adjustment of the same batch changed the row)$/);
      expect((await row(sku))!.onHand).toBe(seen.onHand - 1);
      expect(await recorded([a.adjustmentId, b.adjustmentId])).toEqual([a.adjustmentId]);
      if ((fates[1] as { reason: string }).reason.includes('same batch')) sameBatch++;
    }
    process.stderr.write(`[adjustments cas] kafka pairs decided in one transaction: ${sameBatch} of 4\n`);
  });

  it('in one store transaction, the refusal reports the row as the transaction leaves it', async () => {
    const sku = await product({ l1: 12 });
    const seen = (await row(sku))!;
    const store = new AdjustmentStore({ pool });
    const a = adjustment(sku, 'PICK', 2, { expectedVersion: seen.version });
    const b = adjustment(sku, 'PICK', 3, { expectedVersion: seen.version });
    const c = adjustment(sku, 'RECEIPT', 5);
    const [oa, ob, oc] = await store.apply([a, b, c].map((adjustment) => ({ adjustment, via: 'test:cas-batch' })));
    const after = (await row(sku))!;
    expect(after.onHand).toBe(12 - 2 + 5);
    expect([oa!.outcome, ob!.outcome, oc!.outcome]).toEqual(['applied', 'refused', 'applied']);
    expect(ob).toMatchObject({ code: 'stock_changed', details: { onHand: after.onHand, version: after.version, expectedVersion: seen.version } });
    expect(await recorded([a.adjustmentId, b.adjustmentId, c.adjustmentId])).toHaveLength(2);
  });

  it('over Kafka and HTTP at once: exactly one of the two applies', async () => {
    const sku = await product({ l1: 50 });
    let onHand = 50;
    const winners = { kafka: 0, http: 0 };
    for (let round = 0; round < 6; round++) {
      const seen = (await row(sku))!;
      const viaKafka = adjustment(sku, 'PICK', 2, { expectedVersion: seen.version, expectedOnHand: seen.onHand });
      const viaHttp = adjustment(sku, 'PICK', 3, { expectedVersion: seen.version });
      const [at, reply] = await Promise.all([send(viaKafka), post(gateway.url, '/v1/adjustments', viaHttp, WMS)]);
      const kafkaFate = await fate(viaKafka.adjustmentId, at);
      const httpApplied = reply.status === 201;
      expect([kafkaFate.applied, httpApplied], JSON.stringify({ kafkaFate, reply: reply.body })).toContain(true);
      expect(kafkaFate.applied && httpApplied, 'both applied').toBe(false);
      if (httpApplied) {
        winners.http++;
        onHand -= 3;
        expect((kafkaFate as { reason: string }).reason).toMatch(/^stock_changed: .*changed: expected on hand \d+, is \d+; expected version \d+, is \d+$/);
      } else {
        winners.kafka++;
        onHand -= 2;
        expect(reply.status).toBe(409);
        expect(reply.body).toMatchObject({ error: 'stock_changed' });
      }
      expect((await row(sku))!.onHand).toBe(onHand);
      expect(await recorded([viaKafka.adjustmentId, viaHttp.adjustmentId])).toHaveLength(1);
      if (kafkaFate.applied) expect((await ledgerResult(viaKafka.adjustmentId))!.locations[0]!.onHandBefore).toBe(seen.onHand);
    }
    process.stderr.write(`[adjustments cas] kafka+http race winners over 6 rounds: ${JSON.stringify(winners)}\n`);
  });
});
