/**
 * The stock processor against real Kafka, Redis and the registry, fed hand-built Debezium events
 * on private topics so that order, duplicates, replays and poison messages are exact.
 */
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../lib/redis.ts';
import type { StockDelta, StockLevel } from '../schemas/generated/avro-types.ts';
import { decodeRows, foldRow, summarize, type RowChange, type SkuRows } from '../stream-processors/domain/fold.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { decodeDeadLetter, DLQ_REASONS } from '../lib/contracts/dlq.ts';
import { cleanUp, deadLetterOf, testConfig, testKafka, unique, watchTopic, type TopicWatcher } from './helpers.ts';
import { cdcEvent, startTestProcessor, waitUntil, type TestProcessor } from './processor-helpers.ts';

const config = testConfig();
const redis = createRedis(config.redis);
const kafka: Kafka = testKafka(config);
const registry = new SchemaRegistry({ host: config.registry.url });
const prefix = unique('t').replaceAll('-', '');
const topics = { cdc: unique('cdc'), deltas: unique('deltas'), levels: unique('levels'), dlq: unique('dlq') };
const foldPrefixes: string[] = [];
function foldPrefix(name: string): string {
  const p = unique(name).replaceAll('-', '');
  foldPrefixes.push(p);
  return p;
}
let producer: Producer;
let proc: TestProcessor;
let deltas: TopicWatcher;
let dlq: TopicWatcher;

async function send(...events: Array<{ key: string; value: string | null }>): Promise<void> {
  await producer.send({ topic: topics.cdc, messages: events.map((e) => ({ key: e.key, value: e.value })) });
}

async function rowsOf(sku: string): Promise<SkuRows> {
  return (await proc.views.readRows([sku])).get(sku) ?? {};
}

async function deltasFor(sku: string): Promise<StockDelta[]> {
  const mine = deltas.messages.filter((m) => m.key === sku);
  return Promise.all(mine.map((m) => registry.decode(Buffer.from(m.value!, 'binary')) as Promise<StockDelta>));
}

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 3 })) });
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
  deltas = await watchTopic(kafka, topics.deltas, { fromBeginning: true, binary: true });
  dlq = await watchTopic(kafka, topics.dlq, { fromBeginning: true });
  proc = await startTestProcessor({ config, kafka, redis, prefix, groupId: unique('grp'), fromBeginning: true, topics });
});

afterAll(async () => {
  await proc?.processor.stop();
  await deltas?.stop();
  await dlq?.stop();
  await producer?.disconnect();
  redis.disconnect();
  // The SKUs here live only on the private CDC topic (no rows); the fold tests' views use their own prefixes.
  await cleanUp(config, { redisPrefixes: [prefix, ...foldPrefixes], topics: Object.values(topics) });
});

describe('stock processor', () => {
  it('folds inserts and updates into the view and publishes a delta per change, with versions', async () => {
    const sku = unique('SKU');
    await send(
      cdcEvent({ op: 'r', sku, locationId: 'WH-1', onHand: 10, version: 10, commitTs: 1_000 }),
      cdcEvent({ op: 'c', sku, locationId: 'WH-2', onHand: 5, safetyStock: 1, version: 11, commitTs: 2_000 }),
      cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 12, reserved: 3, version: 12, commitTs: 3_000 }),
    );
    await waitUntil(async () => (await proc.views.readSummary(sku)).version === '12', 20_000, 'version 12 in the view');
    const summary = await proc.views.readSummary(sku);
    expect(summary).toMatchObject({ onHand: '17', reserved: '3', safetyStock: '1', available: '13', version: '12', deleted: '0', commitTs: '3000' });
    await waitUntil(async () => (await deltasFor(sku)).length === 3, 20_000, 'three deltas');
    const ds = await deltasFor(sku);
    expect(ds.map((d) => [d.version, d.available, d.previousAvailable])).toEqual([
      [10, 10, null],
      [11, 14, 10],
      [12, 13, 14],
    ]);
    expect(ds[2]!.location).toEqual({ locationId: 'WH-1', onHand: 12, reserved: 3, safetyStock: 0, available: 9, version: 12 });
  });

  it('ignores duplicates, replays and an older version after a newer one', async () => {
    const sku = unique('SKU');
    const v5 = cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 50, version: 5 });
    await send(v5, v5, cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 40, version: 4 }), v5);
    await send(cdcEvent({ op: 'u', sku, locationId: 'WH-2', onHand: 0, version: 6 })); // marker, same partition
    await waitUntil(async () => (await proc.views.readSummary(sku)).version === '6', 20_000, 'the marker');
    await waitUntil(async () => (await deltasFor(sku)).length >= 2, 20_000, 'effects of v5 and the marker');
    expect(await rowsOf(sku)).toMatchObject({ 'WH-1': { onHand: 50, version: 5 } });
    expect((await proc.views.readSummary(sku)).available).toBe('50');
    // Duplicates of a published change and the stale v4 emit nothing.
    const ds = await deltasFor(sku);
    expect(ds.map((d) => [d.version, d.available])).toEqual([
      [5, 50],
      [6, 50],
    ]);
  });

  it('re-emits the effects of a change that was applied but never published (crash between apply and publish)', async () => {
    const sku = unique('SKU');
    const v7 = cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 70, version: 7 });
    // As if an earlier instance applied v7 to Redis and died before publishing its delta.
    await proc.views.applyBatch([{ sku, locationId: 'WH-1', deleted: false, onHand: 70, reserved: 0, safetyStock: 0, version: 7, commitTs: Date.now() }]);
    await send(v7);
    await waitUntil(async () => (await deltasFor(sku)).length >= 1, 20_000, 'the re-emitted delta');
    await send(v7, cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 71, version: 8 }));
    await waitUntil(async () => (await deltasFor(sku)).length >= 2, 20_000, 'the v8 delta');
    expect((await deltasFor(sku)).map((d) => [d.version, d.available])).toEqual([
      [7, 70],
      [8, 71],
    ]);
    expect((await proc.views.readSummary(sku)).published).toBe('8');
  });

  it('marks a batch of SKUs published in one call, never lowers a mark, and refuses a bad version changing nothing', async () => {
    const skus = Array.from({ length: 1500 }, (_, i) => `${unique('MK')}-${i}`);
    const published = async () => Promise.all(skus.map(async (s) => (await proc.views.readSummary(s)).published));
    await proc.views.markPublished(new Map(skus.map((s, i) => [s, i + 10])));
    expect(await published()).toEqual(skus.map((_, i) => String(i + 10)));
    // Lower for the even SKUs, higher for the odd ones: only the odd ones move.
    await proc.views.markPublished(new Map(skus.map((s, i) => [s, i % 2 ? i + 20 : i])));
    expect(await published()).toEqual(skus.map((_, i) => String(i % 2 ? i + 20 : i + 10)));
    const before = await published();
    await expect(proc.views.markPublished(new Map([[skus[1]!, 99], [skus[0]!, 'v7' as unknown as number]]))).rejects.toThrow(/not a number/);
    await proc.views.markPublished(new Map([[skus[0]!, Number.NaN]])); // NaN is never above a mark
    expect(await published()).toEqual(before);
    await redis.del(...skus.map((s) => proc.views.keys.summary(s)));
  });

  it('sends a poison message to the DLQ with the reason and its origin, and applies the next one', async () => {
    const sku = unique('SKU');
    await send({ key: JSON.stringify({ sku }), value: 'this is not a change event' });
    await send(cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: '7' as unknown as number, version: 2 }));
    await send(cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 9, version: 3 }));
    const first = await dlq.waitFor((m) => m.key === JSON.stringify({ sku }) && m.value === 'this is not a change event');
    const firstLetter = deadLetterOf(first);
    expect(firstLetter.reason).toBe('undecodable CDC event: value is not JSON');
    expect(firstLetter.source.topic).toBe(topics.cdc);
    expect(Number(firstLetter.source.offset)).toBeGreaterThanOrEqual(0);
    const second = await dlq.waitFor((m) => m.key === JSON.stringify({ sku }) && m.offset !== first.offset);
    expect(deadLetterOf(second).reason).toBe('undecodable CDC event: after: quantities must be whole numbers from 0 to 2147483647');
    expect(deadLetterOf(second).source.partition).toBe(firstLetter.source.partition);
    await waitUntil(async () => (await rowsOf(sku))['WH-1']?.version === 3, 20_000, 'the valid event after the poison ones');
    expect((await rowsOf(sku))['WH-1']!.onHand).toBe(9);
  });

  it('dead-letters a change whose SKU totals no longer fit the delta schema, and keeps consuming (fuzz finding F3)', async () => {
    // Each row fits a Postgres int; their sum does not fit Avro's int. Before the fix the encode
    // threw inside the batch, kafkajs gave up on the consumer (restart: false) and every
    // partition of the processor stopped for good.
    const sku = unique('SKU');
    const max = 2_147_483_647;
    await send(cdcEvent({ op: 'c', sku, locationId: 'WH-1', onHand: max, version: 1 }));
    await send(cdcEvent({ op: 'c', sku, locationId: 'WH-2', onHand: max, version: 2 }));
    // v3 sums to max again, but its previous availability (v2's) does not fit either; v4 fits.
    await send(cdcEvent({ op: 'u', sku, locationId: 'WH-1', onHand: 0, version: 3 }));
    await send(cdcEvent({ op: 'u', sku, locationId: 'WH-2', onHand: 5, version: 4 }));
    const dead = await dlq.waitFor((m) => m.key === JSON.stringify({ sku }) && decodeDeadLetter(m)?.code === DLQ_REASONS.effectNotEncodable);
    expect(deadLetterOf(dead).source.topic).toBe(topics.cdc);
    // The later changes of the same SKU (and partition) are folded, and the one that fits is published.
    await waitUntil(async () => (await rowsOf(sku))['WH-2']?.version === 4, 20_000, 'the changes after the unencodable ones');
    await waitUntil(async () => (await deltasFor(sku)).some((d) => d.version === 4), 20_000, 'the v4 delta');
    const v4 = (await deltasFor(sku)).find((d) => d.version === 4)!;
    expect([v4.onHand, v4.available, v4.previousAvailable]).toEqual([5, 5, max]);
    expect((await deltasFor(sku)).some((d) => d.version === 2)).toBe(false);
  });

  it('handles deletes: the location leaves the totals, a replayed older insert cannot resurrect it', async () => {
    const sku = unique('SKU');
    await send(
      cdcEvent({ op: 'c', sku, locationId: 'WH-1', onHand: 4, version: 20 }),
      cdcEvent({ op: 'c', sku, locationId: 'WH-2', onHand: 6, version: 21 }),
      cdcEvent({ op: 'd', sku, locationId: 'WH-1', onHand: 4, version: 20 }),
      { key: JSON.stringify({ sku }), value: null }, // tombstone
      // Postgres' delete trigger re-stamps the remaining location in the same transaction.
      cdcEvent({ op: 'u', sku, locationId: 'WH-2', onHand: 6, version: 22 }),
      cdcEvent({ op: 'c', sku, locationId: 'WH-1', onHand: 4, version: 20 }), // replay of the old insert
    );
    await waitUntil(async () => (await proc.views.readSummary(sku)).version === '22', 20_000, 'the re-stamp after the delete');
    expect((await rowsOf(sku))['WH-1']).toMatchObject({ deleted: true, version: 20 });
    expect(await proc.views.readSummary(sku)).toMatchObject({ onHand: '6', available: '6', version: '22', deleted: '0' });
    await waitUntil(async () => (await deltasFor(sku)).length >= 4, 20_000, 'deltas');
    const ds = await deltasFor(sku);
    expect(ds).toHaveLength(4); // the stale replay emitted nothing
    expect(ds[2]).toMatchObject({ available: 6, previousAvailable: 10, locationId: 'WH-1', location: null });
    expect(ds[3]).toMatchObject({ available: 6, version: 22, locationId: 'WH-2' });
  });

  it('a SKU whose every location is deleted ends deleted, superseding its last version', async () => {
    const sku = unique('SKU');
    await send(
      cdcEvent({ op: 'c', sku, locationId: 'WH-1', onHand: 4, version: 40 }),
      cdcEvent({ op: 'd', sku, locationId: 'WH-1', onHand: 4, version: 40 }),
    );
    await waitUntil(async () => (await proc.views.readSummary(sku)).deleted === '1', 20_000, 'the SKU deleted');
    expect(await proc.views.readSummary(sku)).toMatchObject({ available: '0', version: '40', deleted: '1' });
    await waitUntil(async () => (await deltasFor(sku)).length >= 2, 20_000, 'deltas');
    expect((await deltasFor(sku)).at(-1)).toMatchObject({ available: 0, version: 40, deleted: true });
  });

  it('publishes the latest state per SKU to the levels topic', async () => {
    const sku = unique('SKU');
    await send(cdcEvent({ op: 'c', sku, locationId: 'WH-1', onHand: 3, version: 30 }), cdcEvent({ op: 'c', sku, locationId: 'WH-3', onHand: 2, version: 31 }));
    const levels = await watchTopic(kafka, topics.levels, { fromBeginning: true, binary: true });
    try {
      let level: StockLevel | undefined;
      await waitUntil(
        async () => {
          const mine = levels.messages.filter((m) => m.key === sku);
          if (!mine.length) return false;
          level = (await registry.decode(Buffer.from(mine.at(-1)!.value!, 'binary'))) as StockLevel;
          return level.version === 31;
        },
        20_000,
        'a level at version 31',
      );
      expect(level!.locations.map((l) => [l.locationId, l.available])).toEqual([
        ['WH-1', 3],
        ['WH-3', 2],
      ]);
    } finally {
      await levels.stop();
    }
  });
});

/** Incoming figures of a change (docs/incoming.md), from their own generator so the quantities above keep their sequence. */
let seed2 = 7;
const rnd2 = () => ((seed2 = (seed2 * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
function incomingFigures(v: number): Pick<RowChange, 'incoming' | 'backordered' | 'nextEta' | 'policy' | 'limit'> {
  // The policy moves in phases (as a policy change re-stamps every row of the SKU).
  const policy = Math.floor(v / 70) % 3;
  return {
    incoming: rnd2() < 0.5 ? 0 : Math.floor(rnd2() * 40),
    backordered: Math.floor(rnd2() * 6),
    nextEta: rnd2() < 0.3 ? 0 : 1_795_000_000_000 + Math.floor(rnd2() * 1e9),
    policy,
    limit: rnd2() < 0.3 ? -1 : Math.floor(rnd2() * 30),
  };
}

describe('apply script agrees with the pure fold', () => {
  it('gives the same rows and summary for a shuffled sequence with duplicates, stale events and deletes', async () => {
    const views = new RedisViews({ redis, prefix: foldPrefix('fold') });
    const sku = 'S1';
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const changes: RowChange[] = [];
    for (let v = 1; v <= 200; v++) {
      const locationId = `L${Math.floor(rnd() * 4)}`;
      const deleted = rnd() < 0.1;
      changes.push({ sku, locationId, deleted, onHand: Math.floor(rnd() * 50), reserved: Math.floor(rnd() * 5), safetyStock: Math.floor(rnd() * 3), version: v, commitTs: 1000 + v, ...incomingFigures(v) });
    }
    // Shuffle within small windows and duplicate some: arrival order is not version order.
    const arrivals = changes.flatMap((c) => (rnd() < 0.2 ? [c, c] : [c]));
    for (let i = 0; i < arrivals.length - 1; i++) if (rnd() < 0.3) [arrivals[i], arrivals[i + 1]] = [arrivals[i + 1]!, arrivals[i]!];

    let expected: SkuRows = {};
    const outcomes: string[] = [];
    for (const c of arrivals) {
      const r = foldRow(expected, c);
      expected = r.rows;
      outcomes.push(r.outcome);
    }
    const results = [];
    for (let i = 0; i < arrivals.length; i += 37) results.push(...(await views.applyBatch(arrivals.slice(i, i + 37))));
    expect(results.map((r) => r.outcome)).toEqual(outcomes);
    const stored = decodeRows(await redis.hgetall(views.keys.rows(sku)));
    expect(stored).toEqual(expected);
    const s = summarize(sku, expected);
    const hash = await views.readSummary(sku);
    expect({
      onHand: Number(hash.onHand),
      reserved: Number(hash.reserved),
      safetyStock: Number(hash.safetyStock),
      available: Number(hash.available),
      version: Number(hash.version),
      deleted: hash.deleted === '1',
      commitTs: Number(hash.commitTs),
    }).toEqual({ onHand: s.onHand, reserved: s.reserved, safetyStock: s.safetyStock, available: s.available, version: s.version, deleted: s.deleted, commitTs: s.commitTs });
    // The incoming figures and the backorder allowance the gate sells from (docs/incoming.md).
    const inc = s.incoming ?? { incoming: 0, backordered: 0, nextEta: null, backorderable: 0 };
    expect({ incoming: Number(hash.incoming), backordered: Number(hash.backordered), nextEta: Number(hash.nextEta), backorderable: Number(hash.backorderable) }).toEqual({
      incoming: inc.incoming,
      backordered: inc.backordered,
      nextEta: inc.nextEta ?? 0,
      backorderable: inc.backorderable,
    });
    expect(outcomes).toContain('stale');
    expect(outcomes).toContain('duplicate');

    // The same sequence applied several changes per script call (how rebuild and repair call it).
    const grouped = new RedisViews({ redis, prefix: foldPrefix('foldg') });
    const groupedOutcomes: string[] = [];
    for (let i = 0; i < arrivals.length; i += 7) {
      const [r] = await grouped.applySkus([arrivals.slice(i, i + 7)]);
      groupedOutcomes.push(...r!.outcomes);
    }
    expect(groupedOutcomes).toEqual(outcomes);
    expect(decodeRows(await redis.hgetall(grouped.keys.rows(sku)))).toEqual(expected);
    expect(await grouped.readSummary(sku)).toEqual(await views.readSummary(sku));
  });
});
