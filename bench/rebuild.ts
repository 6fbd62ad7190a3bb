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
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { loadConfigOrExit } from '../lib/config.ts';
import { migrate } from '../lib/migrate.ts';
import { createPgPool } from '../lib/pg.ts';
import { createRedis } from '../lib/redis.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { rebuildViews, reconcileViews, type Progress } from '../stream-processors/views-maintenance.ts';
import { machine, parseArgs } from './args.ts';

const args = parseArgs(process.argv.slice(2));
const LOCATIONS = 3;
const skus = Math.max(1, Math.floor(args.get('rows', 1_000_000) / LOCATIONS));
const rows = skus * LOCATIONS;
const GOAL_SECONDS_PER_MILLION = 60;
const BENCH_DB = 'invsync_bench_rebuild';
const SKU_PREFIX = 'RB-';

const config = loadConfigOrExit();
const progress = (line: string) => process.stderr.write(`${line}\n`);
const prefix = `benchrb-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

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

async function deleteRedisPrefix(redis: ReturnType<typeof createRedis>): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

const redis = createRedis(config.redis.url);
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
    // One statement; the version trigger stamps every row from the sequence, as in production.
    await loader.query(
      `INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock)
       SELECT $1 || lpad(s::text, 7, '0'), 'WH-' || l, 50 + (s * 7 + l) % 500, (s + l) % 5, (s % 3)
         FROM generate_series(1, $2::int) s, generate_series(1, $3::int) l`,
      [SKU_PREFIX, skus, LOCATIONS],
    );
    await loader.query('ANALYZE stock_levels');
  } finally {
    await loader.end();
  }
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  progress(`  loaded ${rows} rows in ${loadSeconds.toFixed(1)} s`);
  result.loadSeconds = +loadSeconds.toFixed(2);

  pool = createPgPool(benchUrl, { max: 4, application: 'invsync-bench-rebuild' });
  const views = new RedisViews({ redis, prefix });
  const deps = { pool, views, feedMaxLen: config.processor.feedMaxLen };
  const memBefore = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);

  progress('  rebuildViews ...');
  const rb = await rebuildViews(deps, { skuPrefix: SKU_PREFIX, progress: throttled('rebuild') });
  const memAfter = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
  const goalSeconds = (GOAL_SECONDS_PER_MILLION * rows) / 1_000_000;
  result.rebuild = {
    rows: rb.rows,
    applied: rb.applied,
    removed: rb.removed,
    seconds: +rb.seconds.toFixed(2),
    rowsPerSecond: Math.round(rb.rows / rb.seconds),
    goalSeconds,
    met: rb.seconds <= goalSeconds,
    redisMemoryMiB: +((memAfter - memBefore) / 2 ** 20).toFixed(1),
  };
  progress(`  rebuilt ${rb.rows} rows in ${rb.seconds.toFixed(1)} s (${Math.round(rb.rows / rb.seconds)} rows/s)`);

  await sleep(100);
  progress('  reconcileViews (repair: false) ...');
  const rc = await reconcileViews(deps, { repair: false, skuPrefix: SKU_PREFIX, progress: throttled('reconcile') });
  result.reconcile = {
    checkedRows: rc.checkedRows,
    drift: rc.drift.length,
    transient: rc.transient,
    seconds: +rc.seconds.toFixed(2),
    rowsPerSecond: Math.round(rc.checkedRows / rc.seconds),
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
  await deleteRedisPrefix(redis).catch((err: Error) => progress(`  cleanup: could not delete ${prefix}:*: ${err.message}`));
  redis.disconnect();
}

if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  const rb = result.rebuild as { seconds: number; rowsPerSecond: number; goalSeconds: number; met: boolean; applied: number; redisMemoryMiB: number } | undefined;
  const rc = result.reconcile as { seconds: number; rowsPerSecond: number; checkedRows: number; drift: number } | undefined;
  const out = [`rebuild of ${rows} rows (${skus} SKUs x ${LOCATIONS} locations; load ${String(result.loadSeconds ?? '-')} s):`];
  if (rb) out.push(`  rebuildViews: ${rb.seconds} s, ${rb.rowsPerSecond} rows/s, ${rb.applied} applied, Redis +${rb.redisMemoryMiB} MiB; goal <= ${rb.goalSeconds} s: ${rb.met ? 'met' : 'MISSED'}`);
  if (rc) out.push(`  reconcileViews (no repair): ${rc.seconds} s, ${rc.rowsPerSecond} rows/s, ${rc.checkedRows} rows checked, drift ${rc.drift}`);
  if (failure) out.push(`  error: ${failure.message}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
const drift = (result.reconcile as { drift?: number } | undefined)?.drift ?? 0;
process.exit(failure || drift > 0 ? 1 : 0);
