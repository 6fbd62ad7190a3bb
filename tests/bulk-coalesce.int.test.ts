/**
 * Coalescing (stream-processors/domain/coalesce.ts) on the real services: a SKU's changes of one
 * transaction within a batch are applied in one call and published as ONE delta and feed entry
 * carrying the transaction's committed state; changes of other transactions stay their own.
 * The first test drives a private CDC topic with chosen transaction ids; the second runs one
 * Postgres transaction over 3,000 rows through Debezium (issue 16, bulk ERP loads).
 */
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka, Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeFeedStates, type SkuState } from '../lib/contracts/feed.ts';
import { redisKeys } from '../lib/contracts/redis-keys.ts';
import { createRedis } from '../lib/redis.ts';
import type { StockDelta } from '../schemas/generated/avro-types.ts';
import { cleanUp, testConfig, testKafka, unique, watchTopic, type Leftovers } from './helpers.ts';
import { cdcEvent, startTestProcessor, waitProcessorLive, waitUntil } from './processor-helpers.ts';

const config = testConfig();
const redis = createRedis(config.redis);
const kafka: Kafka = testKafka(config);
const registry = new SchemaRegistry({ host: config.registry.url });
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const left = { redisPrefixes: [] as string[], skuPrefixes: [] as string[], groups: [] as string[], topics: [] as string[] } satisfies Leftovers;

afterAll(async () => {
  await pool.end();
  redis.disconnect();
  await cleanUp(config, left);
});

/** Whether every SKU's view holds Postgres' SKU version and availability (one pipeline; no SCAN of the keyspace). */
async function viewsMatch(prefix: string, skus: string[]): Promise<boolean> {
  const truth = await pool.query<{ sku: string; v: string; a: string }>(
    `SELECT sku, max(version) AS v, sum(greatest(0, on_hand - reserved - safety_stock)) AS a FROM stock_levels WHERE sku = ANY($1::text[]) GROUP BY sku`,
    [skus],
  );
  const keys = redisKeys(prefix);
  const p = redis.pipeline();
  for (const t of truth.rows) p.hmget(keys.summary(t.sku), 'version', 'available');
  const views = (await p.exec()) ?? [];
  return truth.rows.length === skus.length && truth.rows.every((t, i) => {
    const [v, a] = views[i]![1] as [string | null, string | null];
    return v === t.v && a === t.a;
  });
}

async function feedStates(prefix: string): Promise<SkuState[]> {
  const entries = (await redis.xrange(redisKeys(prefix).feed, '-', '+')) as Array<[string, string[]]>;
  return entries.flatMap(([, f]) => decodeFeedStates(f));
}

describe('coalescing a transaction\'s changes', () => {
  it('publishes one delta per SKU and transaction, with the committed figures and versions', async () => {
    const prefix = unique('co').replaceAll('-', '');
    const cdc = unique('cdc');
    const deltasTopic = unique('deltas');
    left.redisPrefixes.push(prefix);
    left.topics.push(cdc, deltasTopic);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: cdc, numPartitions: 1 }, { topic: deltasTopic, numPartitions: 1 }] });
    await admin.disconnect();
    const deltas = await watchTopic(kafka, deltasTopic, { fromBeginning: true, binary: true });
    const groupId = unique('grp');
    const proc = await startTestProcessor({ config, kafka, redis, prefix, groupId, fromBeginning: true, topics: { cdc, deltas: deltasTopic } });
    const producer: Producer = kafka.producer();
    await producer.connect();
    try {
      const sku = unique('CO');
      // tx 500: a count of all three locations; tx 501: one location; tx 502: a location twice.
      const events = [
        cdcEvent({ op: 'c', sku, locationId: 'WH-1', onHand: 10, version: 1, txId: 500 }),
        cdcEvent({ op: 'c', sku, locationId: 'WH-2', onHand: 20, version: 2, txId: 500 }),
        cdcEvent({ op: 'c', sku, locationId: 'WH-3', onHand: 30, version: 3, txId: 500 }),
        cdcEvent({ op: 'u', sku, locationId: 'WH-2', onHand: 5, version: 4, txId: 501 }),
        cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 7, version: 5, txId: 502 }),
        cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 8, version: 6, txId: 502 }),
      ];
      await producer.send({ topic: cdc, messages: events });
      const decoded = async () => Promise.all(deltas.messages.filter((m) => m.key === sku).map((m) => registry.decode(Buffer.from(m.value!, 'binary')) as Promise<StockDelta>));
      await waitUntil(async () => (await decoded()).some((d) => d.version === 6), 20_000, 'the v6 delta');
      const got = (await decoded()).map((d) => ({ version: d.version, available: d.available, previousAvailable: d.previousAvailable, locationId: d.locationId, location: d.location?.onHand ?? null }));
      // One batch (one send): per transaction the state after it, one delta per location it
      // changed (same SKU version), never a state between two of its rows.
      expect(got).toEqual([
        { version: 3, available: 60, previousAvailable: null, locationId: 'WH-1', location: 10 },
        { version: 3, available: 60, previousAvailable: null, locationId: 'WH-2', location: 20 },
        { version: 3, available: 60, previousAvailable: null, locationId: 'WH-3', location: 30 },
        { version: 4, available: 45, previousAvailable: 60, locationId: 'WH-2', location: 5 },
        { version: 6, available: 43, previousAvailable: 45, locationId: 'WH-1', location: 8 },
      ]);
      expect((await feedStates(prefix)).filter((s) => s.sku === sku).map((s) => [s.version, s.available])).toEqual([
        [3, 60],
        [4, 45],
        [6, 43],
      ]);
      // Every change is still counted, and the view holds the last one.
      await waitUntil(async () => (await proc.metrics.events.get()).values.find((v) => v.labels.outcome === 'applied')?.value === 6, 10_000, 'six applied events counted');
      expect((await proc.views.readSummary(sku)).available).toBe('43');
    } finally {
      await producer.disconnect();
      await proc.processor.stop();
      await deltas.stop();
    }
  });

  it('one Postgres transaction over 3,000 rows: views converge, about one feed entry per SKU', async () => {
    const prefix = unique('bk').replaceAll('-', '');
    const skuPrefix = unique('BK');
    const groupId = unique('grp');
    left.redisPrefixes.push(prefix);
    left.skuPrefixes.push(skuPrefix);
    left.groups.push(groupId);
    const skus = Array.from({ length: 1000 }, (_, i) => `${skuPrefix}-${String(i).padStart(4, '0')}`);
    const proc = await startTestProcessor({ config, kafka, redis, prefix, groupId, fromBeginning: false });
    try {
      await waitProcessorLive(pool, proc.views, `${skuPrefix}-PROBE`);
      await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT s, 'WH-' || l, 50 FROM unnest($1::text[]) s, generate_series(1, 3) l`, [skus]);
      await waitUntil(() => viewsMatch(prefix, skus), 30_000, 'the views of the inserted rows');
      const before = (await feedStates(prefix)).length;
      const firstVersion = Number((await pool.query<{ v: string }>(`SELECT max(version) AS v FROM stock_levels WHERE sku = ANY($1::text[])`, [skus])).rows[0]!.v);
      const client = await pool.connect();
      try {
        // SKU by SKU (an ERP's count in one transaction; the physical order of a plain UPDATE is
        // the heap's, which other tests' rows make arbitrary).
        await client.query('BEGIN');
        await client.query(
          `DO $$ DECLARE s text; BEGIN
             FOR s IN SELECT unnest(string_to_array('${skus.join(',')}', ',')) LOOP
               UPDATE stock_levels SET on_hand = CASE WHEN location_id = 'WH-1' THEN 0 ELSE on_hand - 10 END WHERE sku = s;
             END LOOP;
           END $$`,
        );
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      await waitUntil(() => viewsMatch(prefix, skus), 30_000, 'the views to equal Postgres after the transaction');
      const truth = new Map((await pool.query<{ sku: string; v: string }>(`SELECT sku, max(version) AS v FROM stock_levels WHERE sku = ANY($1::text[]) GROUP BY sku`, [skus])).rows.map((x) => [x.sku, Number(x.v)]));
      // Every SKU's committed state reaches the feed (0 + 40 + 40); the feed is written just after the views.
      const txStates = async () => (await feedStates(prefix)).slice(before).filter((s) => s.sku.startsWith(`${skuPrefix}-0`) && s.version > firstVersion);
      const missing = async () => {
        const states = await txStates();
        return skus.filter((sku) => !states.some((s) => s.sku === sku && s.version === truth.get(sku) && s.available === 80));
      };
      await waitUntil(async () => (await missing()).length === 0, 20_000, 'every SKU\'s committed state on the feed');
      const states = await txStates();
      // Per row change that would be 3,000 entries, 2,000 of them states no reader of Postgres
      // could see; coalesced, only a SKU split by a batch boundary shows one.
      expect(states.length).toBeLessThan(1200);
    } finally {
      await proc.processor.stop();
    }
  });
});
