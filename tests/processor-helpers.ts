/**
 * Helpers for stream-processor integration tests: a processor on private names (its own Redis key
 * prefix, consumer group and output topics — stock.deltas, stock.levels, stock.alerts and the DLQ
 * are private unless a test names them), hand-built Debezium events, and convergence checks against Postgres.
 */
import { startChannelFigures } from '../stream-processors/channel-figures.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import type { RedisClient } from '../lib/redis.ts';
import { registerStockSchemas } from '../lib/avro-registry.ts';
import { TOPICS } from '../lib/topics.ts';
import type { Config } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import type { ThresholdTable } from '../stream-processors/domain/alerts.ts';
import { createProcessorMetrics, type ProcessorMetrics } from '../stream-processors/metrics.ts';
import { startStockProcessor, type StockProcessor } from '../stream-processors/processor.ts';
import { reconcileViews } from '../stream-processors/views-maintenance.ts';
import { markEpoch } from '../stream-processors/epoch.ts';
import { deleteGroups, unique } from './helpers.ts';

export interface TestProcessor {
  /** `stop()` also deletes the private topics the helper created and the group (once empty). */
  processor: StockProcessor;
  metrics: ProcessorMetrics;
  views: RedisViews;
  /** The topics it reads and writes (private unless given). */
  topics: { cdc: string; deltas: string; levels: string; alerts: string; dlq: string };
}

const NO_THRESHOLDS: ThresholdTable = { bySkuChannel: new Map(), defaultThreshold: 0 };

export async function startTestProcessor(opts: {
  config: Config;
  kafka: Kafka;
  redis: RedisClient;
  prefix: string;
  groupId: string;
  fromBeginning: boolean;
  topics?: { cdc?: string; deltas?: string; levels?: string; alerts?: string; dlq?: string };
  /** Keep sales-channel figures (stream-processors/channel-figures.ts), reading the configuration from this pool. */
  channels?: { pool: pg.Pool; pollMs?: number };
  /** The low-stock thresholds in force (stock alerts); none (default 0) unless given. */
  thresholds?: () => ThresholdTable;
  /** Approximate feed length (default 10,000; the platform's default is FEED_MAXLEN, 100,000). */
  feedMaxLen?: number;
}): Promise<TestProcessor> {
  const metrics = createProcessorMetrics({ defaults: false });
  // Outputs go to private topics unless the test names them: a test processor must not publish
  // duplicate deltas or levels onto the platform's topics, which other suites and processes read.
  const given = opts.topics ?? {};
  const created = {
    deltas: given.deltas ? undefined : unique('t-deltas'),
    levels: given.levels ? undefined : unique('t-levels'),
    alerts: given.alerts ? undefined : unique('t-alerts'),
    dlq: given.dlq ? undefined : unique('t-dlq'),
  };
  const topics = {
    cdc: given.cdc ?? TOPICS.cdcStockLevels,
    deltas: given.deltas ?? created.deltas!,
    levels: given.levels ?? created.levels!,
    alerts: given.alerts ?? created.alerts!,
    dlq: given.dlq ?? created.dlq!,
  };
  const ownTopics = Object.values(created).filter((t): t is string => t !== undefined);
  if (ownTopics.length) {
    const admin = opts.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: ownTopics.map((topic) => ({ topic, numPartitions: 3 })) });
    } finally {
      await admin.disconnect();
    }
  }
  const figures = opts.channels
    ? await startChannelFigures({ pool: opts.channels.pool, redis: opts.redis, prefix: opts.prefix, feedMaxLen: 10_000, pollMs: opts.channels.pollMs ?? 100, log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) })
    : undefined;
  const started = await startStockProcessor({
    kafka: opts.kafka,
    redis: opts.redis,
    codecs: await registerStockSchemas(opts.config.registry.url),
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metrics,
    groupId: opts.groupId,
    fromBeginning: opts.fromBeginning,
    prefix: opts.prefix,
    feedMaxLen: opts.feedMaxLen ?? 10_000,
    topics,
    ...(figures ? { channels: figures.watcher, onChannelsStale: figures.stale } : {}),
    alerts: { thresholds: opts.thresholds ?? (() => NO_THRESHOLDS), streamMaxLen: 10_000 },
    coalesce: opts.config.processor.coalesce,
  });
  const processor: StockProcessor = {
    ...started,
    async stop() {
      figures?.stop();
      await started.stop();
      await deleteGroups(opts.kafka, [opts.groupId]);
      if (!ownTopics.length) return;
      const admin = opts.kafka.admin();
      await admin.connect();
      try {
        await admin.deleteTopics({ topics: ownTopics });
      } finally {
        await admin.disconnect();
      }
    },
  };
  await processor.joined;
  // A test's private prefix starts empty on purpose: it counts as built (stream-processors/epoch.ts).
  await markEpoch(opts.redis, opts.prefix);
  return { processor, metrics, views: new RedisViews({ redis: opts.redis, prefix: opts.prefix, ...(figures ? { channels: figures.watcher } : {}) }), topics };
}

let nextTxId = 1;

/** A Debezium PostgreSQL change event for stock_levels, as the connector writes it (JSON, no schema). */
export function cdcEvent(e: {
  op: 'c' | 'u' | 'd' | 'r';
  sku: string;
  locationId: string;
  onHand?: number;
  reserved?: number;
  safetyStock?: number;
  version: number;
  commitTs?: number;
  /** The Postgres transaction; by default each event is its own (a fresh txId), as single-row writes are. */
  txId?: number;
}): { key: string; value: string } {
  const row = {
    sku: e.sku,
    location_id: e.locationId,
    on_hand: e.onHand ?? 0,
    reserved: e.reserved ?? 0,
    safety_stock: e.safetyStock ?? 0,
    version: e.version,
    updated_at: new Date(e.commitTs ?? Date.now()).toISOString(),
  };
  const ts = e.commitTs ?? Date.now();
  return {
    key: JSON.stringify({ sku: e.sku }),
    value: JSON.stringify({
      before: e.op === 'd' ? row : null,
      after: e.op === 'd' ? null : row,
      source: { version: '3.0.8.Final', connector: 'postgresql', name: 'cdc', ts_ms: ts, snapshot: e.op === 'r' ? 'true' : 'false', db: 'inventory', schema: 'public', table: 'stock_levels', txId: e.txId ?? 1_000_000_000 + nextTxId++, lsn: 1 },
      op: e.op,
      ts_ms: ts + 1,
    }),
  };
}

export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * For a processor started at `latest`: writes a probe row until the processor has applied it,
 * which proves it now reads from before any later write.
 */
export async function waitProcessorLive(pool: pg.Pool, views: RedisViews, probeSku: string, timeoutMs = 30_000): Promise<void> {
  await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 0) ON CONFLICT DO NOTHING`, [probeSku]);
  await waitUntil(
    async () => {
      await pool.query(`UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = $1`, [probeSku]);
      await sleep(200);
      return (await views.readRows([probeSku])).has(probeSku);
    },
    timeoutMs,
    'the processor to apply a probe change',
  );
}

/** Waits until the views of every SKU with `skuPrefix` equal Postgres (no drift, no settle). */
export async function waitConverged(pool: pg.Pool, views: RedisViews, skuPrefix: string, timeoutMs = 60_000): Promise<void> {
  let last = -1;
  await waitUntil(
    async () => {
      const res = await reconcileViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix, settleMs: 0 });
      last = res.drift.length;
      return last === 0;
    },
    timeoutMs,
    `views of ${skuPrefix}* to equal Postgres (last drift ${last})`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}`);
  });
}
