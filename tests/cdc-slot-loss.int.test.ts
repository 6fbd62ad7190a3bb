/**
 * CDC hardening (docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery), against real Postgres, Kafka, Kafka Connect/Debezium
 * and Redis:
 *   - the heartbeat query keeps an idle publication's slot from pinning WAL;
 *   - a dropped replication slot is noticed by the watchdog; once the connector streams from a
 *     new slot, an incremental snapshot through the signal table re-emits the rows (including the
 *     changes committed while the slot was gone) and the views converge to Postgres.
 * This test stops the stock connector and drops its slot: run it only against a private stack.
 */
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { TOPICS } from '../lib/topics.ts';
import { CdcWatchdog, watchedSlotsFromConfig } from '../stream-processors/cdc-watchdog.ts';
import { createCdcMetrics, type CdcMetrics } from '../stream-processors/metrics.ts';
import { reconcileViews } from '../stream-processors/views-maintenance.ts';
import { createRedis } from '../lib/redis.ts';
import { cleanUp, testConfig, testKafka, unique, watchTopic, type TopicWatcher } from './helpers.ts';
import { startTestProcessor, waitConverged, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';

const config = testConfig();
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const redis = createRedis(config.redis);
const kafka = testKafka(config);
const stock = watchedSlotsFromConfig().find((s) => s.connector === 'invsync-stock-cdc')!;
const outboxSlot = watchedSlotsFromConfig().find((s) => s.connector === 'invsync-outbox')!.slot;
let watcher: TopicWatcher;
let tp: TestProcessor;
let watchdog: CdcWatchdog | undefined;
let cdcMetrics: CdcMetrics;

async function connect(method: 'PUT' | 'GET', path: string): Promise<Response> {
  return fetch(`${config.connect.url}${path}`, { method, signal: AbortSignal.timeout(15_000) });
}

async function slot(name: string): Promise<{ active: boolean; confirmed: string } | undefined> {
  const { rows } = await pool.query<{ active: boolean; confirmed: string }>(
    `SELECT active, pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`,
    [name],
  );
  return rows[0];
}

async function recovery(): Promise<{ stage: string; detected_at: Date; finished_at: Date | null } | undefined> {
  const { rows } = await pool.query(`SELECT stage, detected_at, finished_at FROM cdc_slot_recovery WHERE slot = $1`, [stock.slot]);
  return rows[0];
}

/** What this file leaves on the shared stack, removed in afterAll (the processor's stop removes its group). */
const prefix = unique('slot').replace(/[^a-z0-9]/g, '').slice(0, 20);
const skus: string[] = [unique('slot-probe')];

beforeAll(async () => {
  watcher = await watchTopic(kafka, TOPICS.cdcStockLevels);
  tp = await startTestProcessor({ config, kafka, redis, prefix, groupId: unique('slot-loss'), fromBeginning: false });
  await waitProcessorLive(pool, tp.views, skus[0]!, 60_000);
}, 120_000);

afterAll(async () => {
  await watchdog?.stop();
  await pool.query('ALTER SYSTEM RESET max_slot_wal_keep_size').catch(() => undefined);
  await pool.query('SELECT pg_reload_conf()').catch(() => undefined);
  // Whatever happened, leave the connector running.
  await connect('PUT', `/connectors/${stock.connector}/resume`).catch(() => undefined);
  await tp?.processor.stop();
  await watcher?.stop();
  redis.disconnect();
  await pool.query('DROP TABLE IF EXISTS cdc_test_unpublished').catch(() => undefined);
  await pool.end();
  await cleanUp(config, { redisPrefixes: [prefix], skus });
});

describe('CDC heartbeat', () => {
  it('an idle publication confirms WAL written by other tables (the slot does not pin it)', async () => {
    await pool.query('CREATE TABLE IF NOT EXISTS cdc_test_unpublished (x int)');
    await pool.query('INSERT INTO cdc_test_unpublished SELECT generate_series(1, 5000)');
    const { rows } = await pool.query<{ lsn: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS lsn`);
    const written = BigInt(rows[0]!.lsn);
    // Nothing writes the outbox here; only the heartbeat query moves its slot (every 10 s).
    await waitUntil(async () => BigInt((await slot(outboxSlot))?.confirmed ?? '0') >= written, 60_000, 'the outbox slot to confirm past unrelated WAL');
    await pool.query('TRUNCATE cdc_test_unpublished');
  }, 90_000);
});

describe('lost replication slot', () => {
  it('is detected, recovered by an incremental snapshot, and the views converge with the changes made meanwhile', async () => {
    const sku = unique('slot-loss');
    const single = `${sku}-single`;
    skus.push(sku, single);
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 10), ($1, 'WH-2', 5), ($2, 'WH-1', 3)`, [sku, single]);
    await waitConverged(pool, tp.views, sku, 60_000);

    cdcMetrics = createCdcMetrics(new Registry());
    watchdog = new CdcWatchdog({
      pool,
      logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      metrics: cdcMetrics,
      connectUrl: config.connect.url,
      slots: [stock],
      intervalMs: 500,
      settleMs: 2000,
      timeoutMs: 180_000,
      thresholds: { retainedWarnBytes: 1 << 30, retainedCriticalBytes: 8 << 30 },
      reconcile: async () => {
        await reconcileViews({ pool, views: tp.views, feedMaxLen: 10_000 }, { repair: true, skuPrefix: sku, settleMs: 0 });
      },
    });
    const started = new Date();
    watchdog.start();

    // Stop the connector (its task and replication connection go away), then drop its slot.
    expect((await connect('PUT', `/connectors/${stock.connector}/stop`)).status).toBeLessThan(300);
    await waitUntil(async () => (await slot(stock.slot))?.active === false, 60_000, 'the slot to be released');
    await pool.query('SELECT pg_drop_replication_slot($1)', [stock.slot]);

    // The watchdog notices the loss.
    await waitUntil(async () => {
      const r = await recovery();
      return r !== undefined && r.stage === 'await_slot' && r.detected_at >= started;
    }, 30_000, 'the watchdog to record the loss');

    // Changes while the slot is gone: never streamed.
    await pool.query(`UPDATE stock_levels SET on_hand = 77 WHERE sku = $1 AND location_id = 'WH-1'`, [sku]);
    await pool.query(`DELETE FROM stock_levels WHERE sku = $1 AND location_id = 'WH-2'`, [sku]);
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-3', 9)`, [sku]);
    await pool.query(`UPDATE stock_levels SET on_hand = 44 WHERE sku = $1`, [single]);
    const { rows } = await pool.query<{ version: string }>(`SELECT version FROM stock_levels WHERE sku = $1`, [single]);
    const version = Number(rows[0]!.version);

    // The connector resumes: it creates a new slot and streams from now on.
    expect((await connect('PUT', `/connectors/${stock.connector}/resume`)).status).toBeLessThan(300);

    // The watchdog requests the snapshot, waits for it to settle, reconciles.
    await waitUntil(async () => {
      const r = await recovery();
      return r?.stage === 'done' && r.finished_at !== null && r.finished_at >= started;
    }, 240_000, 'the recovery to finish');

    // The incremental snapshot re-emitted the row changed while the slot was gone. (Only one row
    // per SKU and chunk: the connector keys events by sku and the snapshot's window buffer is
    // keyed by the message key; the reconciliation below repairs the other locations.)
    const snap = watcher.messages.find((m) => {
      if (!m.value) return false;
      const v = JSON.parse(m.value) as { op?: string; after?: { sku?: string; on_hand?: number; version?: number }; source?: { snapshot?: string } };
      return v.op === 'r' && v.after?.sku === single && v.after.on_hand === 44 && v.after.version === version && v.source?.snapshot === 'incremental';
    });
    expect(snap, 'an incremental-snapshot event for the changed row').toBeDefined();
    await waitUntil(async () => (await tp.views.readRows([single])).get(single)?.['WH-1']?.onHand === 44, 30_000, 'the snapshot event to reach the view');

    // Views equal Postgres, including the changes made while the slot was gone.
    await waitConverged(pool, tp.views, sku, 30_000);
    const view = (await tp.views.readRows([sku])).get(sku)!;
    const live = Object.entries(view).filter(([, r]) => !r.deleted).map(([loc]) => loc);
    expect(live.sort()).toEqual(['WH-1', 'WH-3']);
    expect(view['WH-1']!.onHand).toBe(77);

    // Streaming works again from the new slot.
    await pool.query(`UPDATE stock_levels SET on_hand = 78 WHERE sku = $1 AND location_id = 'WH-1'`, [sku]);
    await waitUntil(async () => (await tp.views.readRows([sku])).get(sku)?.['WH-1']?.onHand === 78, 60_000, 'a fresh change to stream');

    const losses = await cdcMetrics.losses.get();
    expect(losses.values.find((v) => v.labels.slot === stock.slot)?.value).toBeGreaterThanOrEqual(1);
    const recoveries = await cdcMetrics.recoveries.get();
    expect(recoveries.values.find((v) => v.labels.slot === stock.slot && v.labels.result === 'ok')?.value).toBe(1);
    // Heartbeat and signal rows never reach the stock topic, and nothing was dead-lettered.
    expect(watcher.messages.every((m) => !m.value || (JSON.parse(m.value) as { source?: { table?: string } }).source?.table === 'stock_levels')).toBe(true);
    const dlq = await tp.metrics.dlq.get();
    expect(dlq.values.reduce((n, v) => n + v.value, 0)).toBe(0);
  }, 420_000);

  it('invalidated by max_slot_wal_keep_size (wal_status lost): dropped, recreated, snapshotted, views converge', async () => {
    await watchdog?.stop();
    const sku = unique('slot-lost');
    skus.push(sku);
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 10)`, [sku]);
    await waitConverged(pool, tp.views, sku, 60_000);
    const metrics = createCdcMetrics(new Registry());
    // Both slots: an idle outbox slot is invalidated by the same WAL burst.
    watchdog = new CdcWatchdog({
      pool,
      logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      metrics,
      connectUrl: config.connect.url,
      slots: watchedSlotsFromConfig(),
      intervalMs: 500,
      settleMs: 2000,
      timeoutMs: 180_000,
      thresholds: { retainedWarnBytes: 1 << 30, retainedCriticalBytes: 8 << 30 },
      reconcile: async () => {
        await reconcileViews({ pool, views: tp.views, feedMaxLen: 10_000 }, { repair: true, skuPrefix: sku, settleMs: 0 });
      },
    });
    const started = new Date();

    expect((await connect('PUT', `/connectors/${stock.connector}/stop`)).status).toBeLessThan(300);
    await waitUntil(async () => (await slot(stock.slot))?.active === false, 60_000, 'the slot to be released');
    await pool.query(`UPDATE stock_levels SET on_hand = 55 WHERE sku = $1`, [sku]);
    const { rows } = await pool.query<{ version: string }>(`SELECT version FROM stock_levels WHERE sku = $1`, [sku]);
    const version = Number(rows[0]!.version);

    // Let the slot fall behind more than max_slot_wal_keep_size: Postgres invalidates it.
    await pool.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '16MB'`);
    await pool.query('SELECT pg_reload_conf()');
    await pool.query('CREATE TABLE IF NOT EXISTS cdc_test_unpublished (x int)');
    await waitUntil(async () => {
      await pool.query('INSERT INTO cdc_test_unpublished SELECT generate_series(1, 600000)');
      await pool.query('SELECT pg_switch_wal()');
      await pool.query('CHECKPOINT');
      await pool.query('TRUNCATE cdc_test_unpublished');
      const { rows: st } = await pool.query<{ wal_status: string }>(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, [stock.slot]);
      return st[0]?.wal_status === 'lost';
    }, 120_000, 'the slot to be invalidated');
    await pool.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
    await pool.query('SELECT pg_reload_conf()');

    watchdog.start();
    // Debezium cannot start from a lost slot (it retries "Cannot obtain valid replication slot");
    // the watchdog drops it and the connector creates a new one.
    expect((await connect('PUT', `/connectors/${stock.connector}/resume`)).status).toBeLessThan(300);
    await waitUntil(async () => {
      const r = await recovery();
      return r?.stage === 'done' && r.finished_at !== null && r.finished_at >= started;
    }, 240_000, 'the recovery to finish');
    const { rows: rec } = await pool.query<{ reason: string }>(`SELECT reason FROM cdc_slot_recovery WHERE slot = $1`, [stock.slot]);
    expect(rec[0]!.reason).toBe('lost');

    const snap = watcher.messages.find((m) => {
      if (!m.value) return false;
      const v = JSON.parse(m.value) as { op?: string; after?: { sku?: string; on_hand?: number; version?: number }; source?: { snapshot?: string } };
      return v.op === 'r' && v.after?.sku === sku && v.after.on_hand === 55 && v.after.version === version && v.source?.snapshot === 'incremental';
    });
    expect(snap, 'an incremental-snapshot event for the row changed before the loss').toBeDefined();
    await waitConverged(pool, tp.views, sku, 30_000);
    expect((await tp.views.readRows([sku])).get(sku)?.['WH-1']?.onHand).toBe(55);

    // Both slots stream again.
    await waitUntil(async () => (await slot(stock.slot))?.active === true && (await slot(outboxSlot))?.active === true, 120_000, 'both slots to stream again');
    // The outbox slot's recovery (no snapshot: it has no signal table) is closed too.
    await waitUntil(async () => {
      const { rows: o } = await pool.query<{ stage: string }>(`SELECT stage FROM cdc_slot_recovery WHERE slot = $1 AND detected_at >= $2`, [outboxSlot, started]);
      return o.length === 0 || o[0]!.stage === 'done';
    }, 60_000, 'the outbox recovery to close');
    await pool.query(`UPDATE stock_levels SET on_hand = 56 WHERE sku = $1`, [sku]);
    await waitUntil(async () => (await tp.views.readRows([sku])).get(sku)?.['WH-1']?.onHand === 56, 60_000, 'a fresh change to stream');
    const losses = await metrics.losses.get();
    expect(losses.values.find((v) => v.labels.slot === stock.slot && v.labels.reason === 'lost')?.value).toBe(1);
  }, 480_000);
});
