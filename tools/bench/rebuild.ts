/**
 * Benchmark: rebuild of the Redis stock views from Postgres (rebuildViews), then a full
 * reconciliation without repair (reconcileViews) of the same data.
 *
 * So as not to flood the CDC topic with a million change events, the rows live in a separate
 * database on the same Postgres server (BENCH_DB, created here, the project's migrations applied
 * with lib/migrate.ts; Debezium only captures `inventory`). R rows = R/3 SKUs ('RB-0000001', ...)
 * x 3 locations, inserted with generate_series. The views go to a unique Redis prefix. The
 * database and the Redis keys are dropped at the end, whatever happened.
 *
 * Usage: npm run bench:rebuild -- [--rows 1000000] [--json]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { loadConfigOrExit } from '../../lib/config.ts';
import { migrate } from '../../lib/migrate.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { RedisViews } from '../../stream-processors/adapters/redis-views.ts';
import { rebuildViews, reconcileViews, type Progress } from '../../stream-processors/views-maintenance.ts';
import { machine, parseArgs } from './args.ts';
import { busyShare, machineJiffies } from './lib/cpu.ts';
import { deletePrefix, redisSnapshot } from './lib/redis-keys.ts';
import { progress, runId } from './lib/run.ts';

const args = parseArgs(process.argv.slice(2));
const LOCATIONS = 3;
const skus = Math.max(1, Math.floor(args.get('rows', 1_000_000) / LOCATIONS));
const rows = skus * LOCATIONS;
const GOAL_SECONDS_PER_MILLION = 60;
const BENCH_DB = 'invsync_bench_rebuild';
const SKU_PREFIX = 'RB-';
const LOAD_CHUNK_SKUS = 2000;

const config = loadConfigOrExit();
const prefix = `benchrb-${runId(3)}`;

function dbUrl(database: string): string {
  const u = new URL(config.pg.url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function onServer<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: dbUrl('postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function dropDatabase(): Promise<void> {
  // The name belongs to this benchmark: a leftover of an interrupted run is dropped too.
  await onServer((c) => c.query(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`));
}

function throttled(label: string): Progress {
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (now - last < 2000 && done < total) return;
    last = now;
    progress(`  ${label}: ${done}/${total} rows`);
  };
}

/** Where a maintenance run's wall time went (summed per call; reads overlap the applies) and CPU use. */
interface Breakdown {
  pgQuerySeconds: number;
  redisApplySeconds: number;
  redisApplyCalls: number;
  redisFeedSeconds: number;
  redisReadSeconds: number;
  /** The SCAN sweep after the main loop (SKUs only Redis has), from its first SCAN to the end. */
  sweepSeconds: number;
  processCores: number;
  redisCores: number;
  redisUsecPerCall: Record<string, number>;
  machineBusy: number | null;
}

const acc = { pg: 0, apply: 0, applyCalls: 0, feed: 0, read: 0, sweepStart: 0 };

function instrument(pool: pg.Pool, views: RedisViews): void {
  const timed = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, add: (ms: number) => void) =>
    async (...a: A): Promise<R> => {
      const t = performance.now();
      try {
        return await fn(...a);
      } finally {
        add(performance.now() - t);
      }
    };
  const q = pool.query.bind(pool) as (...a: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...a: unknown[]) => Promise<unknown> }).query = timed(q, (ms) => (acc.pg += ms));
  views.applyBatch = timed(views.applyBatch.bind(views), (ms) => {
    acc.apply += ms;
    acc.applyCalls++;
  });
  views.appendFeed = timed(views.appendFeed.bind(views), (ms) => (acc.feed += ms));
  views.readRows = timed(views.readRows.bind(views), (ms) => (acc.read += ms));
  const scan = views.scanSkus.bind(views);
  views.scanSkus = (count?: number) => {
    if (acc.sweepStart === 0) acc.sweepStart = performance.now();
    return scan(count);
  };
}

async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; breakdown: Breakdown }> {
  Object.assign(acc, { pg: 0, apply: 0, applyCalls: 0, feed: 0, read: 0, sweepStart: 0 });
  const j0 = machineJiffies();
  const r0 = await redisSnapshot(redis);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const t1 = performance.now();
  const c = process.cpuUsage(c0);
  const r1 = await redisSnapshot(redis);
  const j1 = machineJiffies();
  const wall = (t1 - t0) / 1000;
  const redisUsecPerCall: Record<string, number> = {};
  for (const name of ['evalsha', 'xadd', 'hgetall', 'scan']) {
    const a = r1.cmd[name];
    const b = r0.cmd[name] ?? { calls: 0, usec: 0 };
    if (a && a.calls > b.calls) redisUsecPerCall[name] = +((a.usec - b.usec) / (a.calls - b.calls)).toFixed(2);
  }
  const sec = (ms: number) => +(ms / 1000).toFixed(2);
  return {
    value,
    breakdown: {
      pgQuerySeconds: sec(acc.pg),
      redisApplySeconds: sec(acc.apply),
      redisApplyCalls: acc.applyCalls,
      redisFeedSeconds: sec(acc.feed),
      redisReadSeconds: sec(acc.read),
      sweepSeconds: acc.sweepStart ? sec(t1 - acc.sweepStart) : 0,
      processCores: +((c.user + c.system) / 1e6 / wall).toFixed(2),
      redisCores: +((r1.cpu - r0.cpu) / wall).toFixed(2),
      redisUsecPerCall,
      machineBusy: busyShare(j0, j1),
    },
  };
}

const redis = createRedis(config.redis);
let pool: pg.Pool | undefined;
let failure: Error | undefined;
const result: Record<string, unknown> = { benchmark: 'rebuild', machine: machine(), rows, skus, locations: LOCATIONS };
try {
  progress(`rebuild: ${rows} rows (${skus} SKUs x ${LOCATIONS} locations) in database ${BENCH_DB}, Redis prefix ${prefix}`);
  await dropDatabase();
  await onServer((c) => c.query(`CREATE DATABASE ${BENCH_DB}`));
  const benchUrl = dbUrl(BENCH_DB);
  const mig = await migrate(benchUrl);
  progress(`  migrations applied: ${mig.applied.join(', ')}`);

  const loadStarted = performance.now();
  const loader = new pg.Client({ connectionString: benchUrl });
  await loader.connect();
  try {
    // The version trigger stamps every row from the sequence, as in production. It also takes a
    // per-SKU advisory lock (migration 0005) held to commit, so the rows go in chunks of SKUs:
    // one statement for all of them would exhaust the shared lock table.
    let lastReport = performance.now();
    for (let from = 1; from <= skus; from += LOAD_CHUNK_SKUS) {
      const to = Math.min(skus, from + LOAD_CHUNK_SKUS - 1);
      await loader.query(
        `INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock)
         SELECT $1 || lpad(s::text, 7, '0'), 'WH-' || l, 50 + (s * 7 + l) % 500, (s + l) % 5, (s % 3)
           FROM generate_series($2::int, $3::int) s, generate_series(1, $4::int) l`,
        [SKU_PREFIX, from, to, LOCATIONS],
      );
      if (performance.now() - lastReport >= 2000) {
        lastReport = performance.now();
        progress(`  load: ${to * LOCATIONS}/${rows} rows inserted`);
      }
    }
    await loader.query('ANALYZE stock_levels');
  } finally {
    await loader.end();
  }
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  progress(`  loaded ${rows} rows in ${loadSeconds.toFixed(1)} s`);
  result.loadSeconds = +loadSeconds.toFixed(2);

  pool = createPgPool(benchUrl, { max: 4, application: 'invsync-bench-rebuild' });
  const views = new RedisViews({ redis, prefix });
  instrument(pool, views);
  const deps = { pool, views, feedMaxLen: config.processor.feedMaxLen };
  const memBefore = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);

  progress('  rebuildViews ...');
  const { value: rb, breakdown: rbBreakdown } = await measured(() => rebuildViews(deps, { skuPrefix: SKU_PREFIX, progress: throttled('rebuild') }));
  const memAfter = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
  const goalSeconds = +((GOAL_SECONDS_PER_MILLION * rows) / 1_000_000).toFixed(1);
  result.rebuild = {
    rows: rb.rows,
    applied: rb.applied,
    removed: rb.removed,
    seconds: +rb.seconds.toFixed(2),
    rowsPerSecond: Math.round(rb.rows / rb.seconds),
    goalSeconds,
    met: rb.seconds <= goalSeconds,
    redisMemoryMiB: +((memAfter - memBefore) / 2 ** 20).toFixed(1),
    breakdown: rbBreakdown,
  };
  progress(`  rebuilt ${rb.rows} rows in ${rb.seconds.toFixed(1)} s (${Math.round(rb.rows / rb.seconds)} rows/s)`);

  await sleep(100);
  progress('  reconcileViews (repair: false) ...');
  const { value: rc, breakdown: rcBreakdown } = await measured(() =>
    reconcileViews(deps, { repair: false, skuPrefix: SKU_PREFIX, progress: throttled('reconcile') }),
  );
  result.reconcile = {
    checkedRows: rc.checkedRows,
    drift: rc.drift.length,
    transient: rc.transient,
    seconds: +rc.seconds.toFixed(2),
    rowsPerSecond: Math.round(rc.checkedRows / rc.seconds),
    breakdown: rcBreakdown,
  };
  progress(`  reconciled ${rc.checkedRows} rows in ${rc.seconds.toFixed(1)} s, drift ${rc.drift.length}`);
} catch (err) {
  failure = err as Error;
  progress(`error: ${failure.message}`);
  result.error = failure.message;
} finally {
  progress('  cleaning up: database, Redis keys');
  await pool?.end().catch(() => undefined);
  await dropDatabase().catch((err: Error) => progress(`  cleanup: could not drop ${BENCH_DB}: ${err.message}`));
  await deletePrefix(redis, prefix).catch((err: Error) => progress(`  cleanup: could not delete ${prefix}:*: ${err.message}`));
  redis.disconnect();
}

if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  const rb = result.rebuild as { seconds: number; rowsPerSecond: number; goalSeconds: number; met: boolean; applied: number; redisMemoryMiB: number; breakdown: Breakdown } | undefined;
  const rc = result.reconcile as { seconds: number; rowsPerSecond: number; checkedRows: number; drift: number; breakdown: Breakdown } | undefined;
  const where = (b: Breakdown) =>
    `    wall time in calls (summed; Postgres reads overlap): Postgres ${b.pgQuerySeconds} s, Redis apply ${b.redisApplySeconds} s (${b.redisApplyCalls} pipelines), feed ${b.redisFeedSeconds} s, Redis reads ${b.redisReadSeconds} s${b.sweepSeconds ? `, final sweep ${b.sweepSeconds} s` : ''}\n` +
    `    CPU: this process ${b.processCores} cores, Redis ${b.redisCores} cores (${Object.entries(b.redisUsecPerCall).map(([n, u]) => `${n} ${u} µs/call`).join(', ')}), machine ${b.machineBusy === null ? '?' : `${Math.round(b.machineBusy * 100)}%`} busy`;
  const out = [`rebuild of ${rows} rows (${skus} SKUs x ${LOCATIONS} locations; load ${String(result.loadSeconds ?? '-')} s):`];
  if (rb) out.push(`  rebuildViews: ${rb.seconds} s, ${rb.rowsPerSecond} rows/s, ${rb.applied} applied, Redis +${rb.redisMemoryMiB} MiB; goal <= ${rb.goalSeconds} s: ${rb.met ? 'met' : 'MISSED'}\n${where(rb.breakdown)}`);
  if (rc) out.push(`  reconcileViews (no repair): ${rc.seconds} s, ${rc.rowsPerSecond} rows/s, ${rc.checkedRows} rows checked, drift ${rc.drift}\n${where(rc.breakdown)}`);
  if (failure) out.push(`  error: ${failure.message}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
const drift = (result.reconcile as { drift?: number } | undefined)?.drift ?? 0;
process.exit(failure || drift > 0 ? 1 : 0);
