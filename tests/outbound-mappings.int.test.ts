/**
 * Outbound mappings against the real pipeline: changes committed to Postgres go through Debezium
 * and a stock processor (private Redis prefix and group, writing private stock.deltas /
 * stock.levels topics) into the mappings, which produce JSON with renamed fields, one topic per
 * location, and Avro as is; order events come from the real outbox router (a private aggregate
 * type, so a private `<type>.events` topic). Bad messages go to a private DLQ and the mapping
 * carries on; a clean restart resumes from the committed offsets without duplicates.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { outboxTopic } from '../lib/topics.ts';
import { MAPPED_HEADERS } from '../connectors/outbound/domain/map-message.ts';
import { startOutboundMappings, type OutboundMappings } from '../connectors/outbound/service.ts';
import type { StockDelta } from '../schemas/generated/avro-types.ts';
import { cleanUp, deadLetterOf, testConfig, testKafka, unique, watchTopic, type TopicWatcher } from './helpers.ts';
import { startTestProcessor, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';

const base = testConfig();
const kafka = testKafka(base);
const pool = new pg.Pool({ connectionString: base.pg.url, max: 3 });
const redis = createRedis(base.redis);
const registry = new SchemaRegistry({ host: base.registry.url });
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

const p = unique('ob'); // topic and group prefix
const SKU = unique('OB').toUpperCase(); // SKU prefix of this run
const aggregateType = unique('ob').replaceAll('-', '_');
const topics = { 'stock.deltas': `${p}.deltas`, 'stock.levels': `${p}.levels`, 'orders.events': outboxTopic(aggregateType), dlq: `${p}.dlq` };
const out = {
  levels: (loc: string) => `${p}.wms.levels.${loc}`,
  picks: (loc: string) => `${p}.wms.picks.${loc}`,
  erpJson: `${p}.erp.deltas`,
  erpAvro: `${p}.erp.deltas-avro`,
};
const mappingFile = path.join(os.tmpdir(), `${p}.mappings.yaml`);
const groupPrefix = unique('obgrp');
const processorGroup = unique('obproc');
const MAPPING_NAMES = ['levels-by-location', 'deltas-json', 'deltas-avro', 'picks'];

fs.writeFileSync(
  mappingFile,
  `version: 1
mappings:
  - name: levels-by-location
    source: stock.levels
    explode: { path: locations, as: location }
    filter: { sku: { prefix: ${SKU} } }
    output: ${p}.wms.levels.{location.locationId}
    key: sku
    partitions: 2
    fields:
      sku: itemCode
      location.locationId: site
      location.onHand: qtyOnHand
      location.available: qtyAvailable
      version: version
  - name: deltas-json
    source: stock.deltas
    filter: { sku: { prefix: ${SKU} }, locationId: WH-2 }
    output: ${out.erpJson}
    fields: { sku: ItemNo, available: QtyAvailable, locationId: Site, version: Version }
  - name: deltas-avro
    source: stock.deltas
    filter: { sku: { prefix: ${SKU} } }
    output: ${out.erpAvro}
    format: avro-as-is
  - name: picks
    source: orders.events
    filter: { $header.eventType: OrderConfirmed }
    explode:
      - { path: items, as: line }
      - { path: line.allocations, as: pick }
    output: ${p}.wms.picks.{pick.locationId}
    key: orderId
    fields: { $header.id: eventId, orderId: orderNo, line.sku: itemCode, pick.qty: pickQty }
`,
);

const config = loadConfig({ ...process.env, CONNECTOR_MAPPINGS_FILE: mappingFile, CONNECTOR_OUTBOUND_GROUP_ID: groupPrefix });
let proc: TestProcessor;
let service: OutboundMappings | undefined;
const watchers: TopicWatcher[] = [];

async function topicExists(topic: string, timeoutMs = 30_000): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitUntil(async () => (await admin.listTopics()).includes(topic), timeoutMs, `topic ${topic} to be created by the mapping`);
  } finally {
    await admin.disconnect();
  }
}

/** Watches an output topic from its beginning, once the mapping has created it. */
async function watchOutput(topic: string, binary = false): Promise<TopicWatcher> {
  await topicExists(topic);
  const w = await watchTopic(kafka, topic, { fromBeginning: true, binary });
  watchers.push(w);
  return w;
}

async function skuVersion(sku: string): Promise<number> {
  const { rows } = await pool.query<{ v: string }>('SELECT max(version) AS v FROM stock_levels WHERE sku = $1', [sku]);
  return Number(rows[0]!.v);
}

const procPrefix = unique('o').replaceAll('-', '');
const probeSku = unique('PROBE');

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 2 })) });
  await admin.disconnect();
  proc = await startTestProcessor({
    config: base,
    kafka,
    redis,
    prefix: procPrefix,
    groupId: processorGroup,
    fromBeginning: false,
    topics: { deltas: topics['stock.deltas'], levels: topics['stock.levels'], dlq: topics.dlq },
  });
  await waitProcessorLive(pool, proc.views, probeSku);
  service = await startOutboundMappings({ config, logger, kafka, topics });
  await service.joined;
});

afterAll(async () => {
  await service?.stop();
  await proc?.processor.stop();
  for (const w of watchers) await w.stop();
  // The mappings create their output topics: every topic under this run's prefix is ours.
  const admin = kafka.admin();
  await admin.connect();
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${p}.`) || t === topics['orders.events']);
  await admin.disconnect();
  await pool.end();
  redis.disconnect();
  fs.rmSync(mappingFile, { force: true });
  await cleanUp(base, {
    redisPrefixes: [procPrefix],
    skus: [probeSku],
    skuPrefixes: [SKU],
    groups: [processorGroup, ...MAPPING_NAMES.map((n) => `${groupPrefix}.${n}`)],
    topics: mine,
  });
});

describe('outbound mappings', () => {
  it('stock.levels to one JSON topic per location, with renamed fields, the SKU as key and the version to dedupe on', async () => {
    const sku = `${SKU}-1`;
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand, safety_stock) VALUES ($1, 'WH-1', 10, 0), ($1, 'WH-2', 4, 1)`, [sku]);
    await pool.query(`UPDATE stock_levels SET on_hand = 7 WHERE sku = $1 AND location_id = 'WH-2'`, [sku]);
    const version = await skuVersion(sku);

    const wh1 = await watchOutput(out.levels('WH-1'));
    const wh2 = await watchOutput(out.levels('WH-2'));
    const last = await wh2.waitFor((m) => m.key === sku && m.headers[MAPPED_HEADERS.version] === String(version));
    expect(JSON.parse(last.value!)).toEqual({ itemCode: sku, site: 'WH-2', qtyOnHand: 7, qtyAvailable: 6, version });
    expect(last.headers[MAPPED_HEADERS.dedupId]).toMatch(new RegExp(`^levels-by-location:${sku}@${version}#\\d$`));
    expect(last.headers[MAPPED_HEADERS.mapping]).toBe('levels-by-location');
    expect(last.headers[MAPPED_HEADERS.source]).toMatch(new RegExp(`^${topics['stock.levels']}/\\d/\\d+$`));
    const atWh1 = await wh1.waitFor((m) => m.key === sku && m.headers[MAPPED_HEADERS.version] === String(version));
    expect(JSON.parse(atWh1.value!)).toEqual({ itemCode: sku, site: 'WH-1', qtyOnHand: 10, qtyAvailable: 10, version });
    // Every record on a location's topic is about that location.
    expect(new Set(wh1.messages.map((m) => JSON.parse(m.value!).site))).toEqual(new Set(['WH-1']));
    expect(new Set(wh2.messages.map((m) => JSON.parse(m.value!).site))).toEqual(new Set(['WH-2']));

    // The output topics were created with the mapping's settings: compacted (source stock.levels), 2 partitions.
    const admin = kafka.admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: [out.levels('WH-1')] });
    expect(meta.topics[0]!.partitions).toHaveLength(2);
    const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: out.levels('WH-1'), configNames: ['cleanup.policy'] }] });
    expect(cfg.resources[0]!.configEntries[0]!.configValue).toBe('compact');
    await admin.disconnect();
  });

  it('stock.deltas filtered by location to JSON, and copied as Avro', async () => {
    const sku = `${SKU}-2`;
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 5), ($1, 'WH-2', 3)`, [sku]);
    await pool.query(`UPDATE stock_levels SET on_hand = 9 WHERE sku = $1 AND location_id = 'WH-2'`, [sku]);
    const version = await skuVersion(sku);

    const json = await watchOutput(out.erpJson);
    const hit = await json.waitFor((m) => m.key === sku && JSON.parse(m.value!).Version === version);
    expect(JSON.parse(hit.value!)).toEqual({ ItemNo: sku, QtyAvailable: 14, Site: 'WH-2', Version: version });
    // Only WH-2 changes pass the filter (the WH-1 insert was published before the WH-2 update, same key).
    expect(json.messages.filter((m) => m.key === sku).map((m) => JSON.parse(m.value!).Site)).toEqual(['WH-2', 'WH-2']);

    const avro = await watchOutput(out.erpAvro, true);
    const copied = await avro.waitFor((m) => m.key === sku && m.headers[MAPPED_HEADERS.version] === String(version));
    const decoded = (await registry.decode(Buffer.from(copied.value!, 'binary'))) as StockDelta;
    expect(decoded).toMatchObject({ sku, available: 14, onHand: 14, version, locationId: 'WH-2', deleted: false });
  });

  it('orders.events: confirmed orders to one pick topic per location, one record per allocation', async () => {
    const orderId = unique('order');
    const payload = (type: string, status: string) => ({
      type,
      orderId,
      customerId: 'customer-1',
      status,
      expiresAt: '2026-01-01T00:15:00.000Z',
      occurredAt: '2026-01-01T00:01:00.000Z',
      items: [
        { sku: `${SKU}-A`, qty: 3, allocations: [{ locationId: 'WH-1', qty: 2 }, { locationId: 'WH-2', qty: 1 }] },
        { sku: `${SKU}-B`, qty: 1, allocations: [{ locationId: 'WH-1', qty: 1 }] },
      ],
    });
    const insert = (type: string, status: string) =>
      pool.query<{ id: string }>(`INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ($1, $2, $3, $4) RETURNING id`, [
        aggregateType,
        orderId,
        type,
        JSON.stringify(payload(type, status)),
      ]);
    await insert('OrderPlaced', 'reserved');
    const confirmed = (await insert('OrderConfirmed', 'confirmed')).rows[0]!.id;

    const wh1 = await watchOutput(out.picks('WH-1'));
    const wh2 = await watchOutput(out.picks('WH-2'));
    await wh1.waitFor((m) => m.key === orderId && JSON.parse(m.value!).itemCode === `${SKU}-B`);
    const atWh2 = await wh2.waitFor((m) => m.key === orderId);
    expect(JSON.parse(atWh2.value!)).toEqual({ eventId: confirmed, orderNo: orderId, itemCode: `${SKU}-A`, pickQty: 1 });
    expect(atWh2.headers).toMatchObject({ [MAPPED_HEADERS.eventId]: confirmed, [MAPPED_HEADERS.eventType]: 'OrderConfirmed', [MAPPED_HEADERS.dedupId]: `picks:${confirmed}#0.1` });
    // OrderPlaced was filtered out: WH-1 holds exactly the two confirmed allocations.
    expect(wh1.messages.filter((m) => m.key === orderId).map((m) => JSON.parse(m.value!))).toEqual([
      { eventId: confirmed, orderNo: orderId, itemCode: `${SKU}-A`, pickQty: 2 },
      { eventId: confirmed, orderNo: orderId, itemCode: `${SKU}-B`, pickQty: 1 },
    ]);
  });

  it('bad messages go to the DLQ with the reason, and the mappings carry on', async () => {
    const dlq = await watchTopic(kafka, topics.dlq, { fromBeginning: true });
    watchers.push(dlq);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: topics['stock.levels'], messages: [{ key: `${SKU}-bad`, value: 'not avro at all' }] });
    await producer.send({ topic: topics['orders.events'], messages: [{ key: 'order-bad', value: '{"type": "OrderConfirmed", ', headers: { eventType: 'OrderConfirmed' } }] });
    await producer.disconnect();

    const avro = await dlq.waitFor((m) => m.key === `${SKU}-bad`);
    const avroLetter = deadLetterOf(avro);
    expect(avroLetter.reason).toMatch(/^mapping levels-by-location: undecodable Avro: not a Confluent-framed Avro message/);
    expect(avroLetter).toMatchObject({ source: { topic: topics['stock.levels'] }, processor: `${groupPrefix}.levels-by-location` });
    expect(avro.value).toBe('not avro at all');
    const json = await dlq.waitFor((m) => m.key === 'order-bad');
    expect(deadLetterOf(json).reason).toMatch(/^mapping picks: value is not JSON/);

    // A location whose name cannot be a topic: that location's record is refused, the others flow.
    const sku = `${SKU}-3`;
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 2), ($1, 'WH 9', 1)`, [sku]);
    const refused = await dlq.waitFor((m) => m.key === sku);
    expect(deadLetterOf(refused).reason).toContain(`output topic "${out.levels('WH 9')}" may only contain A-Z, a-z, 0-9, . _ -`);
    const wh1 = await watchOutput(out.levels('WH-1'));
    await wh1.waitFor((m) => m.key === sku);
  });

  it('a clean restart resumes from the committed offsets: nothing is produced twice', async () => {
    const sku = `${SKU}-1`;
    await service!.stop();
    const metrics = new Registry();
    service = await startOutboundMappings({ config, logger, kafka, topics, metricsRegistry: metrics });
    await service.joined;
    await pool.query(`UPDATE stock_levels SET on_hand = 8 WHERE sku = $1 AND location_id = 'WH-2'`, [sku]);
    const version = await skuVersion(sku);
    const wh2 = await watchOutput(out.levels('WH-2'));
    await wh2.waitFor((m) => m.key === sku && m.headers[MAPPED_HEADERS.version] === String(version));
    const ids = wh2.messages.map((m) => m.headers[MAPPED_HEADERS.dedupId]);
    expect(new Set(ids).size).toBe(ids.length);
    // The new record was counted, on the service's Prometheus registry too. (The count follows
    // the producer's acknowledgement, which may come after the watcher already has the record.)
    expect(service.stats()['levels-by-location']).toMatchObject({ consumed: expect.any(Number), produced: expect.any(Number) });
    await expect.poll(() => service!.stats()['levels-by-location']!.produced, { timeout: 10_000 }).toBeGreaterThan(0);
    const produced = (await metrics.getSingleMetric('invsync_connectors_outbound_records_total')!.get()).values.find((v) => v.labels.mapping === 'levels-by-location');
    expect(produced?.value).toBe(service.stats()['levels-by-location']!.produced);
  });

  it('a bad mapping file stops start-up with one line naming the mapping and field', async () => {
    const bad = path.join(os.tmpdir(), `${p}.bad.yaml`);
    fs.writeFileSync(bad, 'mappings:\n  - name: wms\n    source: stock.levels\n    output: wms.levels\n    fields: { skuu: itemCode }\n');
    try {
      const cfg = loadConfig({ ...process.env, CONNECTOR_MAPPINGS_FILE: bad });
      await expect(startOutboundMappings({ config: cfg, logger, kafka })).rejects.toThrow(
        /^invalid configuration: CONNECTOR_MAPPINGS_FILE .*\.bad\.yaml: mapping "wms" \(#1\): fields\.skuu: stock\.levels has no field "skuu"/,
      );
      const missing = loadConfig({ ...process.env, CONNECTOR_MAPPINGS_FILE: `${bad}.nope` });
      await expect(startOutboundMappings({ config: missing, logger, kafka })).rejects.toThrow(/CONNECTOR_MAPPINGS_FILE cannot be read \(.*: no such file\)/);
    } finally {
      fs.rmSync(bad, { force: true });
    }
  });
});
