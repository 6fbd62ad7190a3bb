/**
 * Benchmark: a bulk ERP load (issue 16 part 3). ONE transaction updates --rows stock_levels rows
 * (default 1,000,000: 333,334 SKUs `BULK-…` × 3 locations, created once and reused), and the
 * script measures what a shopper sees from its COMMIT:
 *   - topic: every change event is on `cdc.public.stock_levels` (Debezium leg; the topic's end
 *     offsets, polled every 250 ms — no consuming);
 *   - folded: the processor child has folded every event (its events counter);
 *   - views (sample): a sample of 2,000 SKU views (the subscribed ones among them) hold the
 *     transaction's SKU version (pipelined HGET version every 250 ms); then a full check of
 *     every SKU's view version and availability against Postgres once everything settled;
 *   - subscriber: a storefront WebSocket client (tools/bench/lib/sdk-client.ts, through a gateway
 *     child) subscribed to 1,000 of the SKUs has received each one's final version.
 * Each leg's time and throughput, and CPU seconds of the processor, Redis, Connect, Kafka, the
 * WAL sender, the gateway and the whole machine over the catch-up (from /proc).
 *
 * Correctness probe during the catch-up: the transaction sets on hand to 0 at every location of
 * 20 of the subscribed SKUs (the others +1). While the change propagates, purchases of those
 * SKUs are attempted through the gateway (customer tokens); none may succeed (a 201 means
 * Postgres committed a hold on stock it no longer has), Postgres must show no reservation on
 * them, and every state the subscriber receives after the commit must be one Postgres committed:
 * the SKU's state before the transaction or after it (counted: states in between, which a
 * per-row fold shows for a transaction that changes several locations of a SKU).
 *
 * Before/after side by side: `--compare` runs rounds with the processor's coalescing off and on
 * (PROCESSOR_COALESCE, ABBA over --rounds), each on a fresh processor child and consumer group,
 * the same Redis prefix, gateway and subscriber. `--cpu-prof DIR` profiles the processor children.
 *
 * The views of the prefix `bulkload` are kept between runs with the rows; they are rebuilt
 * (stream-processors/views-maintenance.ts) only when a sample disagrees with Postgres.
 * `--drop` removes the rows (of that --rows), products, locations and views instead of running.
 *
 * Row order: `--order sku` (default) updates the rows in the table's physical order, SKU by SKU
 * as they were created (a SKU's locations one after another; the 20 sold-out SKUs, rewritten just
 * before, last); `--order location` runs one statement per location in the same
 * transaction (an ERP pushing warehouse by warehouse), which puts a SKU's changes a third of the
 * transaction apart — beyond any batch, so nothing coalesces.
 *
 * Usage: npm run bench:bulk-load -- [--rows 1000000] [--order sku|location] [--compare] [--rounds 1] [--cpu-prof DIR]
 *          [--round-timeout 300] [--json] | --drop
 * Bounded: each round gives up --round-timeout seconds after its commit; hard limit 60 minutes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import { loadConfigOrExit, type Config } from '../../lib/config.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis, type RedisClient } from '../../lib/redis.ts';
import { TOPICS } from '../../lib/topics.ts';
import { RedisViews } from '../../stream-processors/adapters/redis-views.ts';
import { rebuildViews } from '../../stream-processors/views-maintenance.ts';
import { IDENTITY_ENV, purchase } from '../../tests/purchase-helpers.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, spawnNode, startGateway, stopChild, type Child } from './lib/children.ts';
import { machineCpu, procStats } from './lib/cpu.ts';
import { deleteGroup } from './lib/kafka-topics.ts';
import { deletePrefix, redisSnapshot } from './lib/redis-keys.ts';
import { progress, runId } from './lib/run.ts';
import { nodeClient } from './lib/sdk-client.ts';
import { benchSku } from './lib/update-load.ts';

// The rows of one --rows size: BULK-… for 1,000,000 (the figure), BULK<rows>-… for others.
let SKU_PREFIX = 'BULK-';
const LOCATIONS = ['BULK-L1', 'BULK-L2', 'BULK-L3'];
const PREFIX = 'bulkload';
const PROBE = 'BULKPROBE-1';
const SUBSCRIBED = 1000;
const SOLD_OUT = 20; // the first SOLD_OUT subscribed SKUs are set to 0 on hand by the bulk transaction
const SAMPLE = 2000;

type Mode = 'on' | 'off';

interface Round {
  mode: Mode;
  rows: number;
  transactionS: number;
  legs: Record<'topicFirst' | 'topic' | 'folded' | 'viewsSample' | 'subscriber', number | null>;
  perS: Record<'topic' | 'folded' | 'subscriber', number | null>;
  fullCheck: { skus: number; versionBehind: number; availableWrong: number; seconds: number };
  probe: { attempts: number; statuses: Record<string, number>; pgReservedUnits: number; uncommittedStatesShown: number; wrongFinalAvailable: number; itemsAfterCommit: number };
  cpuS: Record<string, number | null>;
  /** CPU µs per row change: Connect, Kafka and the WAL sender until the topic leg completed; the processor and Redis until the fold did. */
  cpuUsPerChange: Record<string, number | null>;
  /** Connect's busiest threads over the Debezium leg (CPU seconds). */
  connectThreads: Array<{ thread: string; cpuS: number }>;
  machineBusy: number;
  redis: { calls: Record<string, number>; usecPerChange: number | null };
  loadavg: number[];
}

const cpuOf = (pid: number | undefined): number | null => (pid ? (procStats(pid)?.cpuS ?? null) : null);

/** CPU seconds per thread of a process (/proc/<pid>/task/<tid>/stat), keyed by "<tid> <name>". */
function threadCpu(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (!pid) return out;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid} ${name}`, (Number(f[11]) + Number(f[12])) / 100);
    }
  } catch {
    // the process is gone
  }
  return out;
}

/** The `n` threads that used the most CPU between two threadCpu() samples. */
function busiestThreads(a: Map<string, number>, b: Map<string, number>, n = 5): Array<{ thread: string; cpuS: number }> {
  return [...b]
    .map(([thread, cpu]) => ({ thread, cpuS: +(cpu - (a.get(thread) ?? 0)).toFixed(2) }))
    .sort((x, y) => y.cpuS - x.cpuS)
    .slice(0, n);
}

function stackPid(config: Config, name: string): number | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(config.stack.dir, 'run', `${name}.json`), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

async function topicEnd(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((a, p) => a + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Ensures the rows exist (333,334 SKUs × 3 locations for 1M), printing progress; returns the SKU count. */
async function ensureRows(pool: pg.Pool, rows: number): Promise<number> {
  const skus = Math.ceil(rows / LOCATIONS.length);
  await pool.query(`INSERT INTO locations (location_id, name) SELECT l, 'bench bulk load' FROM unnest($1::text[]) l ON CONFLICT DO NOTHING`, [LOCATIONS]);
  await pool.query(`INSERT INTO products (sku, name) SELECT $2 || lpad(n::text, greatest(5, length(n::text)), '0'), 'bench bulk' FROM generate_series(1, $1::int) n ON CONFLICT DO NOTHING`, [SUBSCRIBED, SKU_PREFIX]);
  const have = Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM stock_levels WHERE sku LIKE $1`, [`${SKU_PREFIX}%`])).rows[0]!.n);
  if (have === skus * LOCATIONS.length) return skus;
  if (have > skus * LOCATIONS.length) throw new Error(`${have} ${SKU_PREFIX} rows exist, more than --rows: run with --drop first`);
  progress(`  creating ${(skus * LOCATIONS.length).toLocaleString()} rows (${have.toLocaleString()} exist; once, kept for later runs)`);
  const chunk = 20_000;
  const started = Date.now();
  // Creating rows is set-up, not a request: without the pool's 30 s statement timeout (a chunk
  // took longer than that once on a busy machine, failing the whole run).
  const conn = await pool.connect();
  try {
    await conn.query(`SET statement_timeout = 0`);
    for (let from = 1; from <= skus; from += chunk) {
      const to = Math.min(skus, from + chunk - 1);
      await conn.query(
        `INSERT INTO stock_levels (sku, location_id, on_hand)
         SELECT $3 || lpad(n::text, greatest(5, length(n::text)), '0'), l, 1000 FROM generate_series($1::int, $2::int) n, unnest($4::text[]) l
         ORDER BY n, l
         ON CONFLICT DO NOTHING`,
        [from, to, SKU_PREFIX, LOCATIONS],
      );
      progress(`    ${(to * LOCATIONS.length).toLocaleString()} / ${(skus * LOCATIONS.length).toLocaleString()} rows (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    await conn.query(`RESET statement_timeout`);
  } finally {
    conn.release();
  }
  return skus;
}

/** Postgres' SKU versions and availability for `skus` (max row version; sum of max(0, available)). */
async function pgState(pool: pg.Pool, skus: string[]): Promise<Map<string, { version: number; available: number }>> {
  const r = await pool.query<{ sku: string; v: string; a: string }>(
    `SELECT sku, max(version) AS v, sum(greatest(0, on_hand - reserved - safety_stock)) AS a FROM stock_levels WHERE sku = ANY($1::text[]) GROUP BY sku`,
    [skus],
  );
  return new Map(r.rows.map((x) => [x.sku, { version: Number(x.v), available: Number(x.a) }]));
}

/** SKU views (version, available) of `skus`, pipelined. */
async function viewState(redis: RedisClient, skus: string[]): Promise<Array<[number, number]>> {
  const keys = redisKeys(PREFIX);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < skus.length; i += 5000) {
    const p = redis.pipeline();
    for (const s of skus.slice(i, i + 5000)) p.hmget(keys.summary(s), 'version', 'available');
    for (const [err, v] of (await p.exec()) ?? []) {
      if (err) throw err;
      const [ver, av] = v as [string | null, string | null];
      out.push([Number(ver ?? -1), Number(av ?? -1)]);
    }
  }
  return out;
}

async function viewsAgree(pool: pg.Pool, redis: RedisClient, skus: string[]): Promise<{ versionBehind: number; availableWrong: number }> {
  const truth = await pgState(pool, skus);
  const views = await viewState(redis, skus);
  let versionBehind = 0;
  let availableWrong = 0;
  skus.forEach((s, i) => {
    const t = truth.get(s);
    const [v, a] = views[i]!;
    if (!t || v < t.version) versionBehind++;
    else if (v === t.version && a !== t.available) availableWrong++;
  });
  return { versionBehind, availableWrong };
}

/** A processor child on the bench prefix, a fresh group from the end of the CDC topic; `events()` reads its counter. */
async function startProcessor(mode: Mode, group: string, cpuProfDir: string | undefined, feedMaxLen: number): Promise<{ child: Child; events(): Promise<number> }> {
  let ready!: () => void;
  const live = new Promise<void>((r) => (ready = r));
  const waiting: Array<(n: number) => void> = [];
  // The platform's feed length (FEED_MAXLEN), not the test helper's 10,000: a gateway that falls
  // further behind than the feed holds loses entries (docs/benchmarks.md, "Bulk ERP load").
  const child = spawnNode('processor', 'tools/bench/lib/processor-child.ts', ['--prefix', PREFIX, '--group', group, '--probe', PROBE, '--feed-maxlen', String(feedMaxLen)], {
    stdin: true,
    env: { PROCESSOR_COALESCE: mode === 'on' ? '1' : '0', LOG_LEVEL: 'warn' },
    nodeFlags: ['--max-semi-space-size=32', ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(cpuProfDir, mode)}`] : [])],
    onStdoutLine: (line) => {
      if (line.includes('"ready"')) ready();
      else if (line.includes('"metrics"')) waiting.shift()?.((JSON.parse(line) as { events: number }).events);
      else progress(`  [processor] ${line}`);
    },
  });
  await Promise.race([live, sleep(90_000).then(() => Promise.reject(new Error('the processor was not live within 90 s'))), child.exited.then((c) => Promise.reject(new Error(`the processor exited (${String(c)})`)))]);
  return {
    child,
    // NaN when the child does not answer within 5 s (gone or stuck): the round's deadline still holds.
    events: () =>
      Promise.race([
        new Promise<number>((resolve) => {
          waiting.push(resolve);
          child.proc.stdin?.write('metrics\n');
        }),
        sleep(5000).then(() => Number.NaN),
      ]),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const argv = process.argv.slice(2);
  const config = loadConfigOrExit();
  const pool = createPgPool(config.pg.url, { max: 8, application: 'invsync-bench-bulk-load' });
  const redis = createRedis(config.redis);
  const rows = Math.round(args.get('rows', 1_000_000));
  if (rows !== 1_000_000) SKU_PREFIX = `BULK${rows}-`;
  if (args.has('drop')) {
    const conn = await pool.connect();
    try {
      await conn.query(`SET statement_timeout = 0`); // a million rows (and their ledger rows) take longer than the pool's 30 s
      await conn.query(`DELETE FROM stock_levels WHERE sku LIKE $1 OR sku = $2`, [`${SKU_PREFIX}%`, PROBE]);
      await conn.query(`RESET statement_timeout`);
    } finally {
      conn.release();
    }
    await pool.query(`DELETE FROM products WHERE sku LIKE $1`, [`${SKU_PREFIX}%`]);
    await pool.query(`DELETE FROM locations WHERE location_id = ANY($1::text[])`, [LOCATIONS]);
    await deletePrefix(redis, PREFIX);
    progress('bulk-load rows, products, locations and views removed');
    await pool.end();
    redis.disconnect();
    return;
  }
  const rounds = Math.round(args.get('rounds', 1));
  const roundTimeoutS = args.get('round-timeout', 300);
  const order = argv.includes('--order') && argv[argv.indexOf('--order') + 1] === 'location' ? 'location' : 'sku';
  const profIdx = argv.indexOf('--cpu-prof');
  const cpuProfDir = profIdx >= 0 ? path.resolve(argv[profIdx + 1] ?? 'bulk-load-prof') : undefined;
  const modes: Mode[] = args.has('compare') ? Array.from({ length: rounds }, (_, r) => (r % 2 === 0 ? (['off', 'on'] as Mode[]) : (['on', 'off'] as Mode[]))).flat() : Array<Mode>(rounds).fill(args.has('off') ? 'off' : 'on');
  installHardLimit(60 * 60_000, 'error: 60 minutes elapsed; killing children');
  const kafka = createKafka({ connection: config.kafka, clientId: 'bench-bulk-load' });
  const id = runId();
  const result: Record<string, unknown> = { benchmark: 'bulk-load', machine: machine(), rows, order, modes, loadavgAtStart: (await import('node:os')).loadavg() };
  let gateway: { child: Child; url: string } | undefined;
  let client: ReturnType<typeof nodeClient> | undefined;
  let failure: Error | undefined;
  const groups: string[] = [];
  try {
    progress(`bulk-load: ${rows.toLocaleString()} rows in one transaction, rounds ${modes.join(', ')} (run ${id})`);
    const skus = await ensureRows(pool, rows);
    const allSkus = Array.from({ length: skus }, (_, i) => benchSku(SKU_PREFIX, i));
    const subscribed = allSkus.slice(0, SUBSCRIBED);
    const soldOut = subscribed.slice(0, SOLD_OUT);
    const step = Math.max(1, Math.floor(skus / SAMPLE));
    const sample = [...new Set([...subscribed, ...allSkus.filter((_, i) => i % step === 0), allSkus[allSkus.length - 1]!])];
    const updatedRows = skus * LOCATIONS.length;

    // Views: rebuilt only when a sample disagrees with Postgres (a first run, or a run killed mid-way).
    const views = new RedisViews({ redis, prefix: PREFIX });
    const agree = await viewsAgree(pool, redis, sample);
    if (agree.versionBehind + agree.availableWrong > 0) {
      progress(`  views of ${PREFIX} disagree with Postgres on ${agree.versionBehind + agree.availableWrong} of ${sample.length} sampled SKUs: rebuilding`);
      const t = Date.now();
      let shown = 0;
      await rebuildViews({ pool, views, feedMaxLen: config.processor.feedMaxLen }, { skuPrefix: SKU_PREFIX, progress: (d, n) => (d - shown >= 100_000 || d === n ? (progress(`    rebuild ${d.toLocaleString()} / ${n.toLocaleString()}`), (shown = d)) : undefined) });
      progress(`  rebuilt in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }

    gateway = await startGateway({
      prefix: PREFIX,
      // The probe's refusals are expected (counted in `statuses`): the gateway's warning for each is noise here.
      env: { ...IDENTITY_ENV, PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0', LOG_LEVEL: 'error' },
    });
    // The client lives for the whole run (its default limit, 300 s, is shorter than two rounds).
    client = nodeClient(`${gateway.url.replace('http', 'ws')}/v1/stream`, SKU_PREFIX, SUBSCRIBED, 'sdk-client', 3600);
    await Promise.race([client.source.ready, sleep(60_000).then(() => Promise.reject(new Error('the subscriber got no snapshot of its SKUs within 60 s')))]);
    progress(`  gateway and subscriber on ${SUBSCRIBED} SKUs ready`);

    const out: Round[] = [];
    for (const [n, mode] of modes.entries()) {
      const group = `bench-bulk-${id}-${n}`;
      groups.push(group);
      const processor = await startProcessor(mode, group, cpuProfDir, config.processor.feedMaxLen);
      // The sold-out SKUs back in stock before the load (a small transaction, then wait for it to show).
      await pool.query(`UPDATE stock_levels SET on_hand = 1000, reserved = 0 WHERE sku = ANY($1::text[])`, [soldOut]);
      for (let t = Date.now(); Date.now() - t < 30_000; await sleep(200)) if ((await viewsAgree(pool, redis, soldOut)).versionBehind === 0) break;
      await sleep(1500); // let the gateway's tick deliver it
      await client.source.collect();
      const before = await pgState(pool, subscribed);
      // Debezium idle first (no change event for 3 s): a backlog (e.g. of the rows just created)
      // would be counted in this round's legs.
      let topic0 = await topicEnd(kafka, TOPICS.cdcStockLevels);
      for (let t = Date.now(), still = Date.now(); Date.now() - t < 300_000 && Date.now() - still < 3000; await sleep(500)) {
        const now = await topicEnd(kafka, TOPICS.cdcStockLevels);
        if (now !== topic0) [topic0, still] = [now, Date.now()];
      }
      const events0 = await processor.events();
      const walPid = Number((await pool.query<{ p: number | null }>(`SELECT active_pid AS p FROM pg_replication_slots WHERE slot_name = 'invsync_stock_cdc'`)).rows[0]?.p ?? 0) || undefined;
      progress(`  round ${n + 1} (coalescing ${mode}): the bulk transaction...`);

      const conn = await pool.connect();
      let committedAt: number;
      const txStarted = Date.now();
      try {
        await conn.query('BEGIN');
        await conn.query(`SET LOCAL statement_timeout = 0`); // the pool's 30 s is for requests, not an ERP load
        // The order of the row changes (so of the CDC events) is the table's physical order: SKU by
        // SKU as the rows were created (the sold-out SKUs, rewritten just before, come last); or,
        // with --order location, one statement per location (an ERP pushing warehouse by warehouse).
        const set = `UPDATE stock_levels SET on_hand = CASE WHEN sku = ANY($2::text[]) THEN 0 ELSE on_hand + 1 END WHERE sku LIKE $1`;
        let changed = 0;
        if (order === 'sku') changed = (await conn.query(set, [`${SKU_PREFIX}%`, soldOut])).rowCount ?? 0;
        else for (const l of LOCATIONS) changed += (await conn.query(`${set} AND location_id = $3`, [`${SKU_PREFIX}%`, soldOut, l])).rowCount ?? 0;
        if (changed !== updatedRows) throw new Error(`the bulk UPDATE changed ${changed} rows, expected ${updatedRows}`);
        await conn.query('COMMIT');
        committedAt = Date.now();
      } catch (err) {
        await conn.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        conn.release();
      }
      const transactionS = (committedAt - txStarted) / 1000;
      progress(`    committed ${updatedRows.toLocaleString()} rows in ${transactionS.toFixed(1)} s (ledger trigger included); catching up...`);
      const cpuNow = () => ({ processor: cpuOf(processor.child.pid), connect: cpuOf(stackPid(config, 'connect')), kafka: cpuOf(stackPid(config, 'kafka')), walsender: cpuOf(walPid), gateway: cpuOf(gateway!.child.pid), subscriber: cpuOf(client!.child.pid) });
      const cpu0 = cpuNow();
      const connectThreads0 = threadCpu(stackPid(config, 'connect'));
      let connectThreads: Array<{ thread: string; cpuS: number }> = [];
      const r0 = await redisSnapshot(redis);
      // CPU per change of each stage, taken when its leg completes (not at the round's end, so a
      // round that waits on a slower leg does not charge the idle time to the faster ones).
      const atLeg: { topic?: ReturnType<typeof cpuNow>; folded?: ReturnType<typeof cpuNow> & { redis: number } } = {};
      const m0 = machineCpu();

      const after = await pgState(pool, subscribed);
      const sampleTruth = await pgState(pool, sample);
      const sec = () => +((Date.now() - committedAt) / 1000).toFixed(2);
      const legs: Round['legs'] = { topicFirst: null, topic: null, folded: null, viewsSample: null, subscriber: null };
      const seen = new Map<string, number>();
      const probe = { attempts: 0, statuses: {} as Record<string, number>, pgReservedUnits: 0, uncommittedStatesShown: 0, wrongFinalAvailable: 0, itemsAfterCommit: 0 };
      let buying = true;
      const buyer = (async () => {
        for (let i = 0; buying; i++) {
          const sku = soldOut[i % soldOut.length]!;
          const r = await purchase(gateway!.url, `bulk-${id}-${n}-${i}`, `bulk-customer-${i % 50}`, [{ sku, qty: 1 }]).catch((err: Error) => ({ status: `error ${err.message}` }));
          probe.attempts++;
          probe.statuses[String(r.status)] = (probe.statuses[String(r.status)] ?? 0) + 1;
          await sleep(20);
        }
      })();
      const deadline = committedAt + roundTimeoutS * 1000;
      let lastReport = Date.now();
      while (Date.now() < deadline && Object.values(legs).some((v) => v === null)) {
        if (legs.topic === null) {
          const d = (await topicEnd(kafka, TOPICS.cdcStockLevels)) - topic0;
          if (d > 0 && legs.topicFirst === null) legs.topicFirst = sec();
          if (d >= updatedRows) {
            [legs.topic, atLeg.topic] = [sec(), cpuNow()];
            // Is capture bound by one thread? Connect's busiest threads over the Debezium leg.
            connectThreads = busiestThreads(connectThreads0, threadCpu(stackPid(config, 'connect')));
          }
        }
        if (legs.folded === null && (await processor.events()) - events0 >= updatedRows) [legs.folded, atLeg.folded] = [sec(), { ...cpuNow(), redis: (await redisSnapshot(redis)).cpu }];
        // The sample (3,000 HMGETs) once a second: at every 250 ms poll it was most of Redis' HMGETs.
        if (legs.viewsSample === null && (legs.folded !== null || Math.floor(Date.now() / 250) % 4 === 0)) {
          const v = await viewState(redis, sample);
          if (sample.every((s, i) => v[i]![0] >= sampleTruth.get(s)!.version)) legs.viewsSample = sec();
        }
        for (const [sku, version, , ,] of await client.source.collect()) {
          const b = before.get(sku)!;
          const a = after.get(sku)!;
          if (version <= b.version) continue;
          probe.itemsAfterCommit++;
          if (version < a.version) probe.uncommittedStatesShown++;
          seen.set(sku, Math.max(seen.get(sku) ?? 0, version));
        }
        if (legs.subscriber === null && subscribed.every((s) => (seen.get(s) ?? 0) >= after.get(s)!.version)) legs.subscriber = sec();
        if (Date.now() - lastReport > 5000) {
          lastReport = Date.now();
          progress(`    ${sec()} s: topic ${legs.topic ?? '…'} folded ${legs.folded ?? '…'} views ${legs.viewsSample ?? '…'} subscriber ${legs.subscriber ?? '…'} (${seen.size}/${SUBSCRIBED} SKUs seen)`);
        }
        await sleep(250);
      }
      buying = false;
      await buyer;
      const m1 = machineCpu();
      const r1 = await redisSnapshot(redis);
      const cpu1 = { processor: cpuOf(processor.child.pid), connect: cpuOf(stackPid(config, 'connect')), kafka: cpuOf(stackPid(config, 'kafka')), walsender: cpuOf(walPid), gateway: cpuOf(gateway.child.pid), subscriber: cpuOf(client.child.pid) };
      // The subscriber's final available, from the views it was sent (the SDK keeps the latest state).
      const finalViews = await viewState(redis, subscribed);
      subscribed.forEach((s, i) => {
        if (finalViews[i]![0] === after.get(s)!.version && finalViews[i]![1] !== after.get(s)!.available) probe.wrongFinalAvailable++;
      });
      if (!client.child.alive()) progress('    the subscriber child is gone: its leg is not valid for this round');
      probe.pgReservedUnits = Number((await pool.query<{ r: string }>(`SELECT coalesce(sum(reserved), 0) AS r FROM stock_levels WHERE sku = ANY($1::text[])`, [soldOut])).rows[0]!.r);

      const fullStarted = Date.now();
      const full = await viewsAgree(pool, redis, allSkus);
      const fullCheck = { skus: allSkus.length, ...full, seconds: +((Date.now() - fullStarted) / 1000).toFixed(1) };
      const calls: Record<string, number> = {};
      let usec = 0;
      for (const [cmd, c] of Object.entries(r1.cmd)) {
        const d = c.calls - (r0.cmd[cmd]?.calls ?? 0);
        if (d > 0) calls[cmd] = d;
        usec += c.usec - (r0.cmd[cmd]?.usec ?? 0);
      }
      const cpuS: Record<string, number | null> = { redis: +(r1.cpu - r0.cpu).toFixed(2) };
      for (const k of Object.keys(cpu0) as Array<keyof typeof cpu0>) cpuS[k] = cpu0[k] !== null && cpu1[k] !== null ? +(cpu1[k]! - cpu0[k]!).toFixed(2) : null;
      const perS = (s: number | null) => (s ? Math.round(updatedRows / s) : null);
      const us = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null ? +(((a - b) * 1e6) / updatedRows).toFixed(1) : null);
      const cpuUsPerChange = {
        connect: us(atLeg.topic?.connect, cpu0.connect),
        kafka: us(atLeg.topic?.kafka, cpu0.kafka),
        walsender: us(atLeg.topic?.walsender, cpu0.walsender),
        processor: us(atLeg.folded?.processor, cpu0.processor),
        redis: us(atLeg.folded?.redis, r0.cpu),
      };
      const round: Round = {
        mode,
        rows: updatedRows,
        transactionS,
        legs,
        perS: { topic: perS(legs.topic), folded: perS(legs.folded), subscriber: perS(legs.subscriber) },
        fullCheck,
        probe,
        cpuS,
        cpuUsPerChange,
        connectThreads,
        machineBusy: +((m1.busyS - m0.busyS) / Math.max(0.01, m1.totalS - m0.totalS)).toFixed(2),
        redis: { calls, usecPerChange: +(usec / updatedRows).toFixed(1) },
        loadavg: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
      };
      out.push(round);
      progress(
        `    coalescing ${mode}: topic ${legs.topic} s (first ${legs.topicFirst} s), folded ${legs.folded} s, views ${legs.viewsSample} s, subscriber ${legs.subscriber} s; ` +
          `full check ${full.versionBehind} behind / ${full.availableWrong} wrong; probe ${JSON.stringify(probe)}; cpu ${JSON.stringify(cpuS)}; µs/change ${JSON.stringify(cpuUsPerChange)}; connect threads ${JSON.stringify(connectThreads)}; busy ${round.machineBusy}; load ${round.loadavg.join(' ')}`,
      );
      processor.child.proc.stdin?.end();
      await Promise.race([processor.child.exited, sleep(20_000)]);
      await stopChild(processor.child, 5000);
      // A round that did not catch up is reported with its null legs; the next round still runs.
      if (Object.values(legs).some((v) => v === null)) progress(`    round ${n + 1} did not catch up within ${roundTimeoutS} s (legs left null)`);
    }
    result.rounds = out;
    if (args.has('compare')) {
      const ratio = (leg: 'topic' | 'folded' | 'viewsSample' | 'subscriber') => {
        const pairs: number[] = [];
        for (let i = 0; i + 1 < out.length; i += 2) {
          const on = out[i]!.mode === 'on' ? out[i]! : out[i + 1]!;
          const off = out[i]!.mode === 'off' ? out[i]! : out[i + 1]!;
          if (on.legs[leg] && off.legs[leg]) pairs.push(+(on.legs[leg]! / off.legs[leg]!).toFixed(3));
        }
        return pairs;
      };
      result.ratiosOnOverOff = { topic: ratio('topic'), folded: ratio('folded'), viewsSample: ratio('viewsSample'), subscriber: ratio('subscriber') };
    }
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
    result.error = failure.message;
  } finally {
    await client?.source.stop().catch(() => undefined);
    await stopChild(gateway?.child, 5000);
    killAllChildren();
    for (const g of groups) await deleteGroup(kafka, g).catch(() => undefined);
    await pool.query(`DELETE FROM stock_levels WHERE sku = $1`, [PROBE]).catch(() => undefined);
    redis.disconnect();
    await pool.end().catch(() => undefined);
  }
  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (!failure) {
    for (const r of result.rounds as Round[]) {
      process.stdout.write(`coalescing ${r.mode}: commit -> topic ${r.legs.topic} s, -> folded ${r.legs.folded} s, -> views ${r.legs.viewsSample} s, -> subscriber ${r.legs.subscriber} s (${r.perS.folded}/s folded)\n`);
    }
  } else process.stdout.write(`bulk-load benchmark: failed: ${failure.message}\n`);
  process.exit(failure ? 1 : 0);
}

await main();
