/**
 * Schema evolution of `StockAdjustment` under BACKWARD compatibility, end to end, on a private
 * topic and its own subject (`<topic>-value`; the platform's `stock.adjustments-value` is never
 * changed by a test):
 *   - version 2 adds an optional field (`lotNumber`, default null): the registry accepts it;
 *   - changes that would leave old data unreadable are refused: a new field without a default,
 *     a field's type changed, an enum symbol removed;
 *   - an old producer (v1) and a new one (v2) write to the topic at the same time, while an old
 *     consumer (reader schema v1, what runs today) and an upgraded one (reader v2) each read all
 *     of it in their own group: every adjustment is applied to Postgres exactly once, nothing is
 *     dead-lettered, and each consumer reads every record in its own schema's shape.
 */
import type { Admin, Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchemaRegistry, loadAvroSchema, registerAvroSchema } from '../lib/avro-registry.ts';
import { SchemaError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { AvroRecordDecoder } from '../connectors/inbound/adapters/avro-decoder.ts';
import { AdjustmentStore } from '../connectors/inbound/adapters/pg-adjustments.ts';
import { startInboundConsumer, type InboundConsumer } from '../connectors/inbound/consumer.ts';
import { createInboundMetrics, type InboundMetrics } from '../connectors/inbound/metrics.ts';
import type { StockAdjustment } from '../schemas/generated/avro-types.ts';
import { decodeDeadLetter } from '../lib/contracts/dlq.ts';
import { cleanUp, testConfig, testKafka, unique, watchTopic, type TopicWatcher } from './helpers.ts';
import { waitUntil } from './processor-helpers.ts';

const config = testConfig();
const registryUrl = config.registry.url;
const registry = createSchemaRegistry(registryUrl);
const pool = new pg.Pool({ connectionString: config.pg.url, max: 6 });
const kafka = testKafka(config);
const topic = unique('adj-evo');
const dlqTopic = unique('adj-evo-dlq');
const subject = `${topic}-value`;
const location = unique('EVO-L');

interface AvroRecordSchema {
  type: 'record';
  name: string;
  fields: Array<{ name: string; type: unknown; default?: unknown; doc?: string }>;
}
const v1 = loadAvroSchema('StockAdjustment') as AvroRecordSchema;
const v2: AvroRecordSchema = {
  ...v1,
  fields: [...v1.fields, { name: 'lotNumber', type: ['null', 'string'], default: null, doc: 'Lot or batch of the units, when the source system tracks lots.' }],
};
let id1: number;
let id2: number;
let admin: Admin;
let producer: Producer;
let dlq: TopicWatcher;
const consumers: InboundConsumer[] = [];

function decoder(readerSchema: object): AvroRecordDecoder {
  return new AvroRecordDecoder({ registry: createSchemaRegistry(registryUrl), readerSchema });
}

/** Consumer groups and SKUs this file creates on the shared stack, removed in afterAll. */
const groups: string[] = [];
const skus: string[] = [];

async function startConsumer(readerSchema: object): Promise<{ groupId: string; metrics: InboundMetrics }> {
  const metrics = createInboundMetrics({ defaults: false });
  const groupId = unique('evo-grp');
  groups.push(groupId);
  const consumer = await startInboundConsumer({
    kafka,
    store: new AdjustmentStore({ pool }),
    decoder: decoder(readerSchema),
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metrics,
    groupId,
    fromBeginning: true,
    batchMax: 20,
    topics: { adjustments: topic, dlq: dlqTopic },
  });
  consumers.push(consumer);
  await consumer.joined;
  return { groupId, metrics };
}

async function handled(metrics: InboundMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.adjustments.get()).values) out[String(v.labels.outcome)] = (out[String(v.labels.outcome)] ?? 0) + v.value;
  return out;
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 1 },
      { topic: dlqTopic, numPartitions: 1 },
    ],
  });
  await pool.query(`INSERT INTO locations (location_id, name) VALUES ($1, 'schema evolution test')`, [location]);
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  dlq = await watchTopic(kafka, dlqTopic, { fromBeginning: true });
});

afterAll(async () => {
  for (const c of consumers) await c.stop().catch(() => undefined);
  await dlq?.stop();
  await producer?.disconnect();
  await admin?.disconnect();
  await pool.end();
  await cleanUp(config, { skus, groups, topics: [topic, dlqTopic] });
});

describe('StockAdjustment schema evolution (BACKWARD)', () => {
  it('the registry accepts an optional field with a default and refuses changes that break old data', async () => {
    id1 = await registerAvroSchema(registry, registryUrl, subject, v1);
    id2 = await registerAvroSchema(registry, registryUrl, subject, v2);
    expect(id2).not.toBe(id1);
    expect(await registry.getLatestSchemaId(subject)).toBe(id2);

    const incompatible: Array<[string, AvroRecordSchema]> = [
      ['a new field without a default', { ...v2, fields: [...v2.fields, { name: 'zone', type: 'string' }] }],
      ['quantity turned into a string', { ...v2, fields: v2.fields.map((f) => (f.name === 'quantity' ? { ...f, type: 'string' } : f)) }],
      [
        'TRANSFER removed from the kinds',
        {
          ...v2,
          fields: v2.fields.map((f) =>
            f.name === 'kind' ? { ...f, type: { ...(f.type as { symbols: string[] }), symbols: (f.type as { symbols: string[] }).symbols.filter((s) => s !== 'TRANSFER') } } : f,
          ),
        },
      ],
    ];
    for (const [what, schema] of incompatible) {
      const refused = await registerAvroSchema(registry, registryUrl, subject, schema).catch((e: unknown) => e);
      expect(refused, what).toBeInstanceOf(SchemaError);
      expect((refused as Error).message, what).toMatch(/StockAdjustment/);
    }
    expect(await registry.getLatestSchemaId(subject)).toBe(id2);
  });

  it('old and new producers at once, old and new consumers at once: every adjustment applies exactly once', async () => {
    expect(id2, 'the schemas are registered by the previous test').toBeGreaterThan(0);
    skus.push(unique('EVO-A'), unique('EVO-B'));
    await pool.query(`INSERT INTO products (sku, name) SELECT s, 'schema evolution test' FROM unnest($1::text[]) AS s`, [skus]);
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT s, $2, 100 FROM unnest($1::text[]) AS s`, [skus, location]);

    const make = (producerName: string, i: number): StockAdjustment => ({
      adjustmentId: unique(`${producerName}-${i}`),
      sku: skus[i % 2]!,
      locationId: location,
      kind: i % 3 === 0 ? 'PICK' : 'RECEIPT',
      quantity: 1 + (i % 4),
      toLocationId: null,
      occurredAt: Date.now(),
      sourceSystem: producerName,
      reference: null,
      expectedOnHand: null,
      expectedVersion: null,
      countedAt: null,
    });
    const oldOnes = Array.from({ length: 12 }, (_, i) => make('wms-v1', i));
    const newOnes = Array.from({ length: 12 }, (_, i) => make('wms-v2', i));
    const lot = (a: StockAdjustment) => `LOT-${a.adjustmentId.slice(-4)}`;

    // What each consumer reads, decoded as it would: the old reader skips lotNumber, the new one
    // fills in null for old writers.
    const oldBytes = await registry.encode(id1, oldOnes[0]);
    const newBytes = await registry.encode(id2, { ...newOnes[0], lotNumber: lot(newOnes[0]!) });
    const oldReader = decoder(v1);
    const newReader = decoder(v2);
    expect({ ...((await oldReader.decode(newBytes)).value as object) }).toEqual(newOnes[0]);
    expect({ ...((await oldReader.decode(oldBytes)).value as object) }).toEqual(oldOnes[0]);
    expect({ ...((await newReader.decode(oldBytes)).value as object) }).toEqual({ ...oldOnes[0], lotNumber: null });
    expect({ ...((await newReader.decode(newBytes)).value as object) }).toEqual({ ...newOnes[0], lotNumber: lot(newOnes[0]!) });

    const oldConsumer = await startConsumer(v1);
    const newConsumer = await startConsumer(v2);
    // Both producers at once, interleaving on the topic.
    const produce = async (items: StockAdjustment[], encode: (a: StockAdjustment) => Promise<Buffer>) => {
      for (const a of items) await producer.send({ topic, messages: [{ key: a.sku, value: await encode(a) }], acks: -1 });
    };
    await Promise.all([produce(oldOnes, (a) => registry.encode(id1, a)), produce(newOnes, (a) => registry.encode(id2, { ...a, lotNumber: lot(a) }))]);
    // Then something that is dead-lettered, to prove nothing before it was.
    const [marker] = await producer.send({ topic, messages: [{ key: 'marker', value: Buffer.from('not avro') }], acks: -1 });

    const all = [...oldOnes, ...newOnes];
    for (const c of [oldConsumer, newConsumer]) {
      await dlq.waitFor((m) => decodeDeadLetter(m)?.processor === c.groupId && decodeDeadLetter(m)?.source.offset === marker!.baseOffset);
      let h: Record<string, number> = {};
      await waitUntil(async () => (h = await handled(c.metrics)).dlq === 1, 10_000, `${c.groupId} to count the marker`);
      expect((h.applied ?? 0) + (h.duplicate ?? 0), `${c.groupId}: ${JSON.stringify(h)}`).toBe(all.length);
    }
    expect(dlq.messages).toHaveLength(2);
    expect(((await handled(oldConsumer.metrics)).applied ?? 0) + ((await handled(newConsumer.metrics)).applied ?? 0)).toBe(all.length);

    const { rows } = await pool.query<{ adjustment_id: string; source_system: string }>(
      `SELECT adjustment_id, source_system FROM applied_adjustments WHERE adjustment_id = ANY($1)`,
      [all.map((a) => a.adjustmentId)],
    );
    expect(rows).toHaveLength(all.length);
    expect(new Set(rows.map((r) => r.adjustment_id)).size).toBe(all.length);
    for (const sku of skus) {
      const expected = 100 + all.filter((a) => a.sku === sku).reduce((n, a) => n + (a.kind === 'PICK' ? -a.quantity : a.quantity), 0);
      const { rows: stock } = await pool.query<{ on_hand: number }>(`SELECT on_hand FROM stock_levels WHERE sku = $1 AND location_id = $2`, [sku, location]);
      expect(stock[0]!.on_hand, sku).toBe(expected);
    }
  });
});
