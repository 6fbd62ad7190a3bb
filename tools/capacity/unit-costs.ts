/**
 * Measures the platform's per-unit costs on this machine, for the capacity model
 * (tools/capacity/calc.ts, docs/capacity.md): CPU per unit of work of each process, read from
 * /proc (utime + stime) and Redis' INFO before and after a bounded load.
 *
 * Phases (each load bounded well under 60 s, loopback only, progress on stderr):
 *   idle      5 s of nothing: the stack's resting CPU (Connect's poll loop, Kafka, Postgres), to
 *             subtract from the loaded phases.
 *   changes   a stock processor child (own REDIS_PREFIX and consumer group, from the end of the CDC
 *             topic) and --change-rate single-row UPDATEs/s for --change-seconds on private rows:
 *             Postgres per UPDATE, Connect (Debezium) and Kafka per captured change, processor CPU
 *             per folded change, Redis per apply (EVALSHA usec and server CPU).
 *   purchase  a gateway child on the same prefix; a fresh SKU with --units units; the flash-sale
 *             load child (tools/bench/flash-sale-load.ts) buys all of them (sell), then sends
 *             --refusals more attempts to the sold-out SKU (refuse): gateway CPU per accepted and
 *             per refused attempt, Redis per gate call, Postgres and Connect per written order.
 *   feed-read Redis CPU per feed entry per reading gateway (XADD at --feed-rate, --feed-readers
 *             XREAD loops), on the private Redis.
 *   fanout    tools/bench/ws-fanout.ts (our gateway only) as a child, four steps: 1 subscriber at
 *             500 and 20,000 feed entries/s, and --fanout-clients subscribers at 5 and 200 entries/s;
 *             gateway cores = c + e*entries/s + f*frames/s + t*items/s solved for c, e, f, t.
 *
 * Redis is a private redis-server started by this script (see startPrivateRedis: the stack's is
 * shared, and every other processor group folds our changes into it too). Postgres, Kafka and
 * Connect are the stack's, shared: other people's processes may use them during a phase. Every phase reports the machine's busy cores and EVALSHA calls per unit, so a disturbed
 * phase can be recognised; run it twice and compare.
 *
 * Usage: npm run bench:unit-costs -- [--change-rate 500] [--change-seconds 15] [--bulk-rows 250]
 *          [--bulk-changes 40000] [--units 3000]
 *          [--refusals 20000] [--clients 500] [--feed-rate 20000] [--feed-readers 10] [--fanout-clients 2000]
 *          [--skip changes,purchase,feed-read,fanout]
 *          [--shared-redis (use the stack's Redis instead of a private redis-server)]
 *          [--write tools/capacity/unit-costs.json] [--json]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import { loadConfigOrExit, PROJECT_ROOT, type Config } from '../../lib/config.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import type { RedisClient } from '../../lib/redis.ts';
import { machine, parseArgs } from '../bench/args.ts';
import type { LoadSummary } from '../bench/flash-sale-load.ts';
import { installHardLimit, killAllChildren, spawnNode, startGateway, stopChild, type Child } from '../bench/lib/children.ts';
import { machineCpu, procStats } from '../bench/lib/cpu.ts';
import { readFeed } from '../bench/lib/feed.ts';
import { deleteGroup } from '../bench/lib/kafka-topics.ts';
import { runLoadChild } from '../bench/lib/load-child.ts';
import { deletePrefix, redisSnapshot, type RedisSnapshot } from '../bench/lib/redis-keys.ts';
import { progress, runId } from '../bench/lib/run.ts';
import { seedBenchRows, steadyUpdates } from '../bench/lib/update-load.ts';
import { createKafka } from '../../lib/kafka.ts';
import { solveLinear, type UnitCosts } from './model.ts';

const run = promisify(execFile);
const GATEWAY_SHOP_KEY = 'dev-storefront-key';

// ---------------------------------------------------------------------------------------------
// CPU of the stack's processes

interface StackPids {
  postgres: number;
  redis: number;
  kafka: number;
  connect: number;
}

/** The stack's pids from `npm run stack -- status --json` (the public entry point). */
async function stackPids(): Promise<StackPids> {
  const { stdout } = await run('node', ['--import', 'tsx', 'tools/stack/cli.ts', 'status', '--json'], { cwd: PROJECT_ROOT, env: process.env, timeout: 60_000 }).catch(
    (err: { stdout?: string; message: string }) => {
      if (err.stdout) return { stdout: err.stdout }; // exit 1 when unhealthy: the JSON is still printed
      throw new Error(`stack status failed: ${err.message}`);
    },
  );
  const status = JSON.parse(stdout) as { healthy: boolean; components: Array<{ name: string; pid: number | null; healthy: boolean }> };
  const pid = (name: string) => {
    const c = status.components.find((x) => x.name === name);
    if (!c?.pid || !c.healthy) throw new Error(`${name} is not running and healthy: start the stack with \`npm run stack -- up\``);
    return c.pid;
  };
  if (!status.healthy) throw new Error('the stack is not healthy (`npm run stack -- status`); start it with `npm run stack -- up`');
  return { postgres: pid('postgres'), redis: pid('redis'), kafka: pid('kafka'), connect: pid('connect') };
}

/** Pid and parent pid of every process. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      out.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * CPU seconds of Postgres: the postmaster, its live children (backends, walsenders, the WAL
 * writer, ...), and its reaped children (cutime + cstime: a backend that exits hands its CPU time
 * to the postmaster when it is reaped, so short-lived connections are not lost).
 */
function postgresCpuS(postmaster: number): number {
  let s = 0;
  try {
    const stat = fs.readFileSync(`/proc/${postmaster}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    s = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100; // utime stime cutime cstime
  } catch {
    return 0;
  }
  for (const [pid, ppid] of parents()) if (ppid === postmaster) s += procStats(pid)?.cpuS ?? 0;
  return s;
}

interface Sample {
  at: number;
  machine: { busyS: number; totalS: number };
  postgres: number;
  redisProc: number;
  kafka: number;
  connect: number;
  self: number;
  children: Record<string, number>;
  redis: RedisSnapshot;
}

async function sample(pids: StackPids, redis: RedisClient, children: Child[]): Promise<Sample> {
  const self = process.cpuUsage();
  return {
    at: performance.now(),
    machine: machineCpu(),
    postgres: postgresCpuS(pids.postgres),
    redisProc: procStats(pids.redis)?.cpuS ?? 0,
    kafka: procStats(pids.kafka)?.cpuS ?? 0,
    connect: procStats(pids.connect)?.cpuS ?? 0,
    self: (self.user + self.system) / 1e6,
    children: Object.fromEntries(children.map((c) => [c.name, procStats(c.pid)?.cpuS ?? 0])),
    redis: await redisSnapshot(redis),
  };
}

interface Delta {
  seconds: number;
  machineBusyCores: number;
  /** CPU seconds used between the samples. */
  cpuS: { postgres: number; redis: number; kafka: number; connect: number; self: number; [child: string]: number };
  evalsha: { calls: number; usec: number };
}

function delta(a: Sample, b: Sample): Delta {
  const seconds = (b.at - a.at) / 1000;
  const cores = Math.max(1, machine().cpus);
  const cpuS: Delta['cpuS'] = {
    postgres: b.postgres - a.postgres,
    // INFO cpu (the server's own getrusage) and /proc agree; INFO has finer resolution.
    redis: b.redis.cpu - a.redis.cpu,
    kafka: b.kafka - a.kafka,
    connect: b.connect - a.connect,
    self: b.self - a.self,
  };
  for (const [k, v] of Object.entries(b.children)) cpuS[k] = v - (a.children[k] ?? v);
  const ev = (s: Sample) => s.redis.cmd.evalsha ?? { calls: 0, usec: 0 };
  return {
    seconds,
    machineBusyCores: +(((b.machine.busyS - a.machine.busyS) / Math.max(0.001, b.machine.totalS - a.machine.totalS)) * cores).toFixed(2),
    cpuS,
    evalsha: { calls: ev(b).calls - ev(a).calls, usec: ev(b).usec - ev(a).usec },
  };
}

const us = (cpuS: number, units: number) => (units > 0 ? +((cpuS * 1e6) / units).toFixed(1) : null);
const cores = (d: Delta) => Object.fromEntries(Object.entries(d.cpuS).map(([k, v]) => [k, +(v / d.seconds).toFixed(3)]));

/**
 * A private redis-server (same binary and persistence settings as the stack's: AOF, fsync every
 * second, no RDB) on a free port with a password of its own. The stack's Redis is shared with
 * every other processor group and test on the machine, and each of them folds our changes too,
 * so its INFO commandstats and CPU cannot be attributed to our work; this one's can.
 */
async function startPrivateRedis(): Promise<{ url: string; pid: number; proc: ChildProcess; dir: string }> {
  const { freePort } = await import('../bench/lib/http.ts');
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'invsync-capacity-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory', '1gb', '--maxmemory-policy', 'noeviction', '--requirepass', password, '--daemonize', 'no'];
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (proc.pid === undefined) throw new Error('could not start redis-server (is it installed? the stack needs it too)');
  process.on('exit', () => proc.kill('SIGKILL'));
  const url = `redis://default:${password}@127.0.0.1:${port}`;
  const probe = createRedis(url);
  probe.on('error', () => undefined); // refused until the server listens: retried below
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.ping();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the private redis-server on port ${port} did not answer within 10 s: ${(err as Error).message}`);
      await sleep(100);
    }
  }
  probe.disconnect();
  return { url, pid: proc.pid, proc, dir };
}

// ---------------------------------------------------------------------------------------------
// phases

interface Ctx {
  config: Readonly<Config>;
  pool: pg.Pool;
  redis: RedisClient;
  pids: StackPids;
  id: string;
  prefix: string;
  groupId: string;
  processor?: Child;
  gateway?: { child: Child; port: number; url: string };
  /** Idle CPU seconds per second of the stack's processes (subtracted from loaded phases). */
  idle?: Record<string, number>;
}

async function idlePhase(ctx: Ctx): Promise<Record<string, unknown>> {
  progress('phase idle: 5 s with no load of ours (the stack at rest, plus whatever else runs)');
  const a = await sample(ctx.pids, ctx.redis, []);
  await sleep(5000);
  const d = delta(a, await sample(ctx.pids, ctx.redis, []));
  ctx.idle = Object.fromEntries(['postgres', 'redis', 'kafka', 'connect'].map((k) => [k, d.cpuS[k]! / d.seconds]));
  progress(`  idle cores: ${JSON.stringify(cores(d))}, machine busy ${d.machineBusyCores}`);
  return { seconds: +d.seconds.toFixed(1), machineBusyCores: d.machineBusyCores, cores: cores(d), evalshaPerS: Math.round(d.evalsha.calls / d.seconds) };
}

/** CPU seconds of `name` in `d` above its idle rate. */
const net = (ctx: Ctx, d: Delta, name: 'postgres' | 'redis' | 'kafka' | 'connect') => Math.max(0, d.cpuS[name] - (ctx.idle?.[name] ?? 0) * d.seconds);

async function startProcessor(ctx: Ctx): Promise<void> {
  ctx.processor = spawnNode('processor', 'stream-processors/main.ts', [], {
    env: { REDIS_PREFIX: ctx.prefix, PROCESSOR_GROUP_ID: ctx.groupId, PROCESSOR_START_FROM: 'latest', PROCESSOR_METRICS_PORT: '0', PROCESSOR_RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'warn' },
  });
  // Ready when a touched probe row reaches the processor's feed.
  const probe = `CAPU-${ctx.id.toUpperCase()}-PROBE`;
  await ctx.pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 1) ON CONFLICT DO NOTHING`, [probe]);
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (!ctx.processor.alive()) throw new Error('the processor exited during start-up');
    await ctx.pool.query(`UPDATE stock_levels SET on_hand = on_hand WHERE sku = $1`, [probe]);
    await sleep(500);
    if ((await ctx.redis.xlen(redisKeys(ctx.prefix).feed)) > 0) break;
    if (Date.now() > deadline) throw new Error('the processor did not fold a probe change within 90 s');
  }
  progress(`  processor pid ${ctx.processor.pid} is folding (prefix ${ctx.prefix})`);
}

/**
 * Commits stock changes on private rows with `drive` and measures every process's CPU from the
 * first commit until the processor's feed shows the last version written of every row.
 */
async function measureChanges(ctx: Ctx, label: string, skuPrefix: string, drive: (written: (sku: string, version: string) => void) => Promise<{ changes: number; errors: number }>) {
  const feedKey = redisKeys(ctx.prefix).feed;
  const last = (await ctx.redis.xrevrange(feedKey, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
  const seen = new Map<string, number>();
  const wrote = new Map<string, number>();
  let entries = 0;
  let reading = true;
  const feedRedis = createRedis(ctx.config.redis.url);
  const loop = readFeed(feedRedis, feedKey, last[0]?.[0] ?? '0-0', () => reading, (state) => {
    if (!state.sku.startsWith(skuPrefix)) return;
    entries++;
    seen.set(state.sku, Math.max(seen.get(state.sku) ?? 0, Number(state.version)));
  });
  const a = await sample(ctx.pids, ctx.redis, [ctx.processor!]);
  const load = await drive((sku, version) => wrote.set(sku, Math.max(wrote.get(sku) ?? 0, Number(version))));
  const caughtUp = () => [...wrote].every(([sku, v]) => (seen.get(sku) ?? 0) >= v);
  const drainBy = Date.now() + 60_000;
  while (!caughtUp() && Date.now() < drainBy) await sleep(50);
  const b = await sample(ctx.pids, ctx.redis, [ctx.processor!]);
  reading = false;
  await loop.catch(() => undefined);
  feedRedis.disconnect();
  const d = delta(a, b);
  const n = load.changes;
  progress(`  ${label}: ${n} changes committed, ${entries} feed entries, ${caughtUp() ? 'all folded' : 'NOT all folded within 60 s'} in ${d.seconds.toFixed(1)} s; cores ${JSON.stringify(cores(d))}; machine busy ${d.machineBusyCores}`);
  return {
    changes: n,
    errors: load.errors,
    feedEntries: entries,
    caughtUp: caughtUp(),
    seconds: +d.seconds.toFixed(1),
    changesPerS: Math.round(n / d.seconds),
    machineBusyCores: d.machineBusyCores,
    cores: cores(d),
    evalsha: { calls: d.evalsha.calls, perChange: +(d.evalsha.calls / Math.max(1, n)).toFixed(3), usecPerCall: +(d.evalsha.usec / Math.max(1, d.evalsha.calls)).toFixed(1) },
    usPerChange: {
      processor: us(d.cpuS.processor ?? 0, n),
      connect: us(net(ctx, d, 'connect'), n),
      connectGross: us(d.cpuS.connect, n),
      kafka: us(net(ctx, d, 'kafka'), n),
      postgres: us(net(ctx, d, 'postgres'), n),
      redis: us(net(ctx, d, 'redis'), n),
      loadGenerator: us(d.cpuS.self, n),
    },
  };
}

/**
 * Two ways to commit changes: `steady`, single-row autocommit UPDATEs at --change-rate (how a
 * storefront-facing change usually arrives: one per transaction, fsync'd, at a rate the pipeline
 * keeps up with), and `bulk`, --bulk-rows rows per transaction as fast as the pipeline takes them
 * (the pipeline's throughput cost: Debezium, Kafka and the processor batch, fixed costs amortise).
 */
async function changesPhase(ctx: Ctx, rate: number, seconds: number, bulkRows: number, bulkChanges: number): Promise<Record<string, unknown>> {
  const rows = 1000;
  const skuPrefix = `CAPU-${ctx.id.toUpperCase()}-`;
  const skuOf = (i: number) => `${skuPrefix}${String(i + 1).padStart(5, '0')}`;
  await seedBenchRows(ctx.pool, skuPrefix, rows);
  progress(`phase changes/steady: ${rate} single-row UPDATEs/s for ${seconds} s -> Debezium -> Kafka -> processor`);
  const steady = await measureChanges(ctx, 'steady', skuPrefix, async (written) => {
    const load = await steadyUpdates(ctx.pool, { rate, seconds, rows, skuOf, onAck: written, onReport: (sent, total) => progress(`  sent ${sent}/${total}`) });
    return { changes: load.total - load.errors, errors: load.errors };
  });
  progress(`phase changes/bulk: ${bulkChanges} changes in transactions of ${bulkRows} rows, 2 at a time`);
  const bulk = await measureChanges(ctx, 'bulk', skuPrefix, async (written) => {
    const txs = Math.ceil(bulkChanges / bulkRows);
    let done = 0;
    let errors = 0;
    const one = async (t: number) => {
      const skus = Array.from({ length: bulkRows }, (_, i) => skuOf((t * bulkRows + i) % rows));
      try {
        const r = await ctx.pool.query<{ sku: string; version: string }>(`UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = ANY($1::text[]) AND location_id = 'WH-1' RETURNING sku, version`, [skus]);
        for (const row of r.rows) written(row.sku, row.version);
        done += r.rows.length;
      } catch {
        errors++;
      }
    };
    // Two transactions in flight, never on the same rows (bulkRows <= rows / 3), so they do not
    // wait on each other's row locks.
    let next = 0;
    await Promise.all(Array.from({ length: 2 }, async () => {
      while (next < txs) await one(next++);
    }));
    return { changes: done, errors };
  });
  return { steady, bulk };
}

/** The load child (tools/bench/flash-sale-load.ts) as the storefront backend; `onPrimed` when its clock starts. */
function runLoad(port: number, sku: string, attempts: number, clients: number, onPrimed?: () => void, maxSeconds = 50): Promise<LoadSummary> {
  return runLoadChild(port, sku, { attempts, clients, customers: 100_000, maxSeconds }, { apiKey: GATEWAY_SHOP_KEY, ...(onPrimed ? { onPrimed } : {}) });
}

async function purchasePhase(ctx: Ctx, units: number, refusals: number, clients: number): Promise<Record<string, unknown>> {
  progress(`phase purchase: sell ${units} units, then ${refusals} attempts on the sold-out SKU, over ${clients} connections`);
  const sku = `CAPU-${ctx.id.toUpperCase()}-FLASH`;
  const warm = `${sku}-W`;
  // A hot SKU (waiting room) with nothing left: every attempt is answered by the ticket script's
  // sold-out path, the steady state of a flash sale after the units are gone.
  const hot = `${sku}-HOT`;
  ctx.gateway = await startGateway({
    prefix: ctx.prefix,
    env: { PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0', PURCHASE_MAX_PER_CUSTOMER: '1000', PURCHASE_HOT_SKUS: hot },
  });
  const g = ctx.gateway;
  const stocked = [[sku, units], [warm, 50], [hot, 0]] as const;
  for (const [s, q] of stocked) await ctx.pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', $2)`, [s, q]);
  const by = Date.now() + 90_000;
  for (const [s, q] of stocked) {
    for (;;) {
      const res = await fetch(`${g.url}/v1/stock/${s}`).catch(() => undefined);
      const body = res?.status === 200 ? ((await res.json()) as { available?: number }) : undefined;
      if (body?.available === q) break;
      if (Date.now() > by) throw new Error(`the gateway did not report ${s} with ${q} available within 90 s`);
      await ctx.pool.query(`UPDATE stock_levels SET on_hand = on_hand WHERE sku = $1`, [s]);
      await sleep(300);
    }
  }
  progress(`  gateway pid ${g.child.pid} on ${g.url}; warm-up: 3000 attempts on ${warm}`);
  await runLoad(g.port, warm, 3000, clients);

  // Three samples: when the load's connections are primed, when it ends (gateway and Redis per
  // attempt), and 2 s later, once the write-back's CDC (stock row, outbox row) has been captured
  // and folded (Postgres, Connect, Kafka per order).
  const measure = async (label: string, target: string, attempts: number) => {
    const kids = [g.child, ctx.processor!];
    let first: Promise<Sample> | undefined;
    const s = await runLoad(g.port, target, attempts, clients, () => void (first ??= sample(ctx.pids, ctx.redis, kids)));
    const b = await sample(ctx.pids, ctx.redis, kids);
    await sleep(2000);
    const c = await sample(ctx.pids, ctx.redis, kids);
    if (!first) throw new Error('the load child never reported its connections primed');
    const a = await first;
    const d = delta(a, b);
    const dTail = delta(a, c);
    progress(`  ${label}: ${s.completed} answered in ${(s.durationMs / 1000).toFixed(1)} s (${s.attemptsPerS}/s): 201 ${s.accepted}, sold_out ${s.soldOut}, other ${s.other}; cores ${JSON.stringify(cores(d))}, machine busy ${d.machineBusyCores}`);
    return { s, d, dTail };
  };
  // Gateway at rest (ticks, expiry and admit loops), to subtract from the 2 s tail.
  const r0 = procStats(g.child.pid)!.cpuS;
  await sleep(3000);
  const gatewayIdleCores = (procStats(g.child.pid)!.cpuS - r0) / 3;

  const sell = await measure('sell', sku, units);
  const refuse = await measure('refuse', sku, refusals);
  const refuseHot = await measure('refuse-hot', hot, refusals);
  const gw = (x: { d: Delta }) => x.d.cpuS.gateway ?? 0;
  const accepted = sell.s.accepted;
  const orders = await ctx.pool.query<{ n: string }>(`SELECT count(*) AS n FROM order_lines WHERE sku = $1`, [sku]);
  return {
    gatewayIdleCores: +gatewayIdleCores.toFixed(3),
    sell: {
      attempts: sell.s.completed,
      accepted,
      ordersInPostgres: Number(orders.rows[0]!.n),
      attemptsPerS: sell.s.attemptsPerS,
      seconds: +sell.d.seconds.toFixed(1),
      machineBusyCores: sell.d.machineBusyCores,
      cores: cores(sell.d),
      evalsha: { calls: sell.d.evalsha.calls, perAttempt: +(sell.d.evalsha.calls / Math.max(1, sell.s.completed)).toFixed(2), usecPerCall: +(sell.d.evalsha.usec / Math.max(1, sell.d.evalsha.calls)).toFixed(1) },
      usPerAcceptedPurchase: {
        gateway: us(gw(sell), accepted),
        redis: us(net(ctx, sell.d, 'redis'), accepted),
        postgres: us(net(ctx, sell.dTail, 'postgres'), accepted),
        connect: us(net(ctx, sell.dTail, 'connect'), accepted),
        kafka: us(net(ctx, sell.dTail, 'kafka'), accepted),
        processor: us(sell.dTail.cpuS.processor ?? 0, accepted),
      },
    },
    refuse: {
      attempts: refuse.s.completed,
      soldOut: refuse.s.soldOut,
      other: refuse.s.other,
      attemptsPerS: refuse.s.attemptsPerS,
      latencyMs: refuse.s.latencyMs.all,
      seconds: +refuse.d.seconds.toFixed(1),
      loadSeconds: +(refuse.s.durationMs / 1000).toFixed(1),
      machineBusyCores: refuse.d.machineBusyCores,
      cores: cores(refuse.d),
      gatewayCoresDuringLoad: +(gw(refuse) / refuse.d.seconds).toFixed(2),
      evalsha: {
        calls: refuse.d.evalsha.calls,
        perAttempt: +(refuse.d.evalsha.calls / Math.max(1, refuse.s.completed)).toFixed(2),
        usecPerCall: +(refuse.d.evalsha.usec / Math.max(1, refuse.d.evalsha.calls)).toFixed(1),
      },
      usPerAttempt: {
        gateway: us(gw(refuse), refuse.s.completed),
        redis: us(net(ctx, refuse.d, 'redis'), refuse.s.completed),
        postgres: us(net(ctx, refuse.d, 'postgres'), refuse.s.completed),
        loadClient: us(refuse.s.cpuS, refuse.s.completed),
      },
    },
    refuseHot: {
      attempts: refuseHot.s.completed,
      soldOut: refuseHot.s.soldOut,
      other: refuseHot.s.other,
      attemptsPerS: refuseHot.s.attemptsPerS,
      latencyMs: refuseHot.s.latencyMs.all,
      machineBusyCores: refuseHot.d.machineBusyCores,
      cores: cores(refuseHot.d),
      gatewayCoresDuringLoad: +(gw(refuseHot) / refuseHot.d.seconds).toFixed(2),
      evalsha: {
        calls: refuseHot.d.evalsha.calls,
        perAttempt: +(refuseHot.d.evalsha.calls / Math.max(1, refuseHot.s.completed)).toFixed(2),
        usecPerCall: +(refuseHot.d.evalsha.usec / Math.max(1, refuseHot.d.evalsha.calls)).toFixed(1),
      },
      usPerAttempt: {
        gateway: us(gw(refuseHot), refuseHot.s.completed),
        redis: us(net(ctx, refuseHot.d, 'redis'), refuseHot.s.completed),
      },
    },
  };
}

/**
 * Redis CPU per feed entry per reading gateway: a writer XADDs --feed-rate entries/s (the shape
 * the processor writes, as tools/bench/ws-fanout.ts does) for 5 s, first alone, then with
 * --feed-readers readers doing what every gateway does (XREAD COUNT 2000 BLOCK 500 from its own
 * position). The difference, per entry and reader, is what one more gateway costs the master that
 * holds the feed stream (one key: one slot, one master).
 */
async function feedReadPhase(ctx: Ctx, rate: number, readers: number): Promise<Record<string, unknown>> {
  progress(`phase feed-read: ${rate} XADD/s for 5 s alone, then with ${readers} XREAD readers`);
  const key = `${ctx.prefix}:capfeed`;
  const run = async (nReaders: number) => {
    const clients = Array.from({ length: nReaders }, () => createRedis(ctx.config.redis.url));
    let running = true;
    let read = 0;
    const last = (await ctx.redis.xrevrange(key, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    const from = last[0]?.[0] ?? '0-0';
    const loops = clients.map(async (c) => {
      let id = from;
      while (running) {
        const res = (await c.xread('COUNT', 2000, 'BLOCK', 500, 'STREAMS', key, id)) as Array<[string, Array<[string, string[]]>]> | null;
        for (const [, entries] of res ?? []) {
          read += entries.length;
          id = entries[entries.length - 1]![0];
        }
      }
    });
    const r0 = await redisSnapshot(ctx.redis);
    const t0 = Date.now();
    let sent = 0;
    const total = rate * 5;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * rate));
      if (due > sent) {
        const p = ctx.redis.pipeline();
        for (; sent < due; sent++) {
          const available = 50 + (sent % 50);
          p.xadd(key, 'MAXLEN', '~', 100_000, '*', 'sku', `CAPF-${sent % 1000}`, 'available', available, 'onHand', available, 'reserved', 0, 'safetyStock', 0, 'version', sent, 'deleted', 0, 'commitTs', Date.now(),
            'locations', `[{"locationId":"WH-1","onHand":${available},"reserved":0,"safetyStock":0,"available":${available},"version":${sent}}]`);
        }
        await p.exec();
      }
      await sleep(5);
    }
    await sleep(300); // the readers take the last entries
    const r1 = await redisSnapshot(ctx.redis);
    running = false;
    await Promise.all(loops);
    for (const c of clients) c.disconnect();
    return { cpuS: r1.cpu - r0.cpu, sent, read };
  };
  const alone = await run(0);
  const withReaders = await run(readers);
  const perEntryRead = withReaders.read > 0 ? +(((withReaders.cpuS - alone.cpuS) * 1e6) / withReaders.read).toFixed(2) : null;
  progress(`  writer alone ${alone.cpuS.toFixed(3)} s of Redis CPU for ${alone.sent} entries; with ${readers} readers ${withReaders.cpuS.toFixed(3)} s, ${withReaders.read} entries read: ${String(perEntryRead)} µs per entry read`);
  await ctx.redis.unlink(key);
  return { rate, readers, alone, withReaders, usPerXaddEntry: +((alone.cpuS * 1e6) / alone.sent).toFixed(2), usPerEntryRead: perEntryRead };
}

export interface FanoutStep {
  subscribers: number;
  rate: number;
  entriesPerS: number;
  framesPerS: number;
  deliveredItemsPerS: number;
  serverCores: number;
  caughtUp: boolean;
  frameP99Ms: number | null;
  machineBusyCores: number;
}

/** Runs tools/bench/ws-fanout.ts (gateway only) as a child; returns its steps. */
export async function fanoutRun(clients: number, rates: number[], seconds: number, skus = 100): Promise<FanoutStep[]> {
  let out = '';
  const child = spawnNode('ws-fanout', 'tools/bench/ws-fanout.ts', ['--skip-naive', '--clients', String(clients), '--skus', String(skus), '--rates', rates.join(','), '--seconds', String(seconds), '--json'], {
    onStdoutLine: (line) => void (out += `${line}\n`),
  });
  const code = await Promise.race([child.exited, sleep(180_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') {
    await stopChild(child, 5000);
    throw new Error('ws-fanout did not finish within 180 s');
  }
  const result = JSON.parse(out) as { phases?: Array<{ server: string; steps: Array<Record<string, unknown>> }> };
  const steps = result.phases?.find((p) => p.server === 'gateway')?.steps ?? [];
  if (!steps.length) throw new Error(`ws-fanout exited (${String(code)}) without gateway steps`);
  return steps.map((s) => {
    const cpu = s.cpu as { serverCores: number; machineBusyCores: number };
    return {
      subscribers: s.subscribers as number,
      rate: s.rate as number,
      entriesPerS: +((s.entriesWritten as number) / (s.seconds as number)).toFixed(1),
      framesPerS: s.framesPerS as number,
      deliveredItemsPerS: s.deliveredItemsPerS as number,
      serverCores: cpu.serverCores,
      caughtUp: s.caughtUp as boolean,
      frameP99Ms: (s.frameLatencyMs as { p99: number | null }).p99,
      machineBusyCores: cpu.machineBusyCores,
    };
  });
}

async function fanoutPhase(fanoutClients: number): Promise<{ steps: FanoutStep[]; fixedCores: number; perEntryUs: number; perFrameUs: number; perItemUs: number }> {
  // One subscriber at a low and a high feed rate: the gateway's fixed cost (its read loop, ticks,
  // timers) and its cost per feed entry. XREAD batches more entries per call as the rate rises, so
  // a single rate would fold the per-call cost into the per-entry one.
  progress('phase fanout: ws-fanout with 1 subscriber at 500 and 20,000 entries/s (fixed cost, cost per feed entry)');
  const a = await fanoutRun(1, [500, 20_000], 8);
  progress(`phase fanout: ws-fanout with ${fanoutClients} subscribers at 5 and 200 entries/s (cost per frame and per item)`);
  const b = await fanoutRun(fanoutClients, [5, 200], 8);
  const steps = [...a, ...b];
  // cores * 1e6 = c + e * entries/s + f * frames/s + t * items/s, one equation per step.
  const [c, e, f, t] = solveLinear(
    steps.map((s) => [1, s.entriesPerS, s.framesPerS, s.deliveredItemsPerS]),
    steps.map((s) => s.serverCores * 1e6),
  );
  return { steps, fixedCores: +(c! / 1e6).toFixed(3), perEntryUs: +e!.toFixed(2), perFrameUs: +f!.toFixed(2), perItemUs: +t!.toFixed(3) };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const skipArg = argv.indexOf('--skip') >= 0 ? (argv[argv.indexOf('--skip') + 1] ?? '') : '';
  const skip = new Set(skipArg.split(',').filter(Boolean));
  for (const s of skip) {
    if (!['changes', 'purchase', 'feed-read', 'fanout'].includes(s)) {
      process.stderr.write(`error: --skip takes a comma-separated list of changes, purchase, feed-read, fanout (got "${s}")\n`);
      process.exit(2);
    }
  }
  const writeIdx = argv.indexOf('--write');
  const writeTo = writeIdx >= 0 ? path.resolve(argv[writeIdx + 1] ?? '') : undefined;
  const changeRate = Math.round(args.get('change-rate', 500));
  const changeSeconds = args.get('change-seconds', 15);
  const units = Math.round(args.get('units', 3000));
  const refusals = Math.round(args.get('refusals', 20_000));
  const clients = Math.round(args.get('clients', 500));
  const fanoutClients = Math.round(args.get('fanout-clients', 2000));
  const bulkRows = Math.round(args.get('bulk-rows', 250));
  const feedRate = Math.round(args.get('feed-rate', 20_000));
  const feedReaders = Math.round(args.get('feed-readers', 10));
  const bulkChanges = Math.round(args.get('bulk-changes', 40_000));
  if (bulkRows > 333) {
    process.stderr.write('error: --bulk-rows must be at most 333 (two transactions in flight must not share rows of the 1,000)\n');
    process.exit(2);
  }
  if (changeSeconds > 50) {
    process.stderr.write('error: --change-seconds must be at most 50 (every phase stays under a minute)\n');
    process.exit(2);
  }

  // Before the configuration is read: every child (processor, gateway, ws-fanout) inherits REDIS_URL.
  let privateRedis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
  if (!args.has('shared-redis')) {
    privateRedis = await startPrivateRedis();
    process.env.REDIS_URL = privateRedis.url;
    progress(`private redis-server pid ${privateRedis.pid} (${privateRedis.url.replace(/:[^:@]*@/, ':***@')})`);
  }
  const config = loadConfigOrExit();
  const id = runId();
  installHardLimit(15 * 60_000, 'error: unit-costs ran past 15 minutes; killing children', ['SIGINT', 'SIGTERM']);
  const pool = createPgPool(config.pg.url, { max: 20, application: 'invsync-capacity-unit-costs' });
  const redis = createRedis(config.redis);
  const ctx: Ctx = { config, pool, redis, pids: { postgres: 0, redis: 0, kafka: 0, connect: 0 }, id, prefix: `bcap-${id}`, groupId: `bench-capacity-${id}` };
  const result: Record<string, unknown> = { benchmark: 'unit-costs', machine: machine(), date: new Date().toISOString(), options: { changeRate, changeSeconds, bulkRows, bulkChanges, units, refusals, clients, fanoutClients } };
  let failure: Error | undefined;
  try {
    ctx.pids = await stackPids();
    if (privateRedis) ctx.pids.redis = privateRedis.pid;
    progress(`unit costs (run ${id}); stack pids ${JSON.stringify(ctx.pids)}`);
    result.idle = await idlePhase(ctx);
    if (!skip.has('changes') || !skip.has('purchase')) await startProcessor(ctx);
    if (!skip.has('changes')) result.changes = await changesPhase(ctx, changeRate, changeSeconds, bulkRows, bulkChanges);
    if (!skip.has('purchase')) result.purchase = await purchasePhase(ctx, units, refusals, clients);
    await stopChild(ctx.gateway?.child, 15_000);
    await stopChild(ctx.processor, 30_000);
    if (!skip.has('feed-read')) result.feedRead = await feedReadPhase(ctx, feedRate, feedReaders);
    if (!skip.has('fanout')) result.fanout = await fanoutPhase(fanoutClients);
  } catch (err) {
    failure = err as Error;
    result.error = failure.message;
    progress(`error: ${failure.message}`);
  } finally {
    killAllChildren();
    progress('cleanup: removing the run rows, Redis keys and consumer group');
    const like = `CAPU-${id.toUpperCase()}-%`;
    await pool
      .query(
        `WITH mine AS (SELECT DISTINCT order_id FROM order_lines WHERE sku LIKE $1),
              gone_outbox AS (DELETE FROM outbox WHERE aggregatetype = 'orders' AND aggregateid IN (SELECT order_id::text FROM mine))
         DELETE FROM orders WHERE id IN (SELECT order_id FROM mine)`,
        [like],
      )
      .catch((err: Error) => progress(`  cleanup: orders: ${err.message}`));
    await pool.query(`DELETE FROM stock_levels WHERE sku LIKE $1`, [like]).catch((err: Error) => progress(`  cleanup: stock rows: ${err.message}`));
    await pool.query(`DELETE FROM stock_sku_locks WHERE sku LIKE $1`, [like]).catch(() => undefined);
    await deletePrefix(redis, ctx.prefix).catch((err: Error) => progress(`  cleanup: ${ctx.prefix}:*: ${err.message}`));
    if (ctx.processor) await deleteGroup(createKafka({ connection: config.kafka, clientId: `bench-capacity-${id}` }), ctx.groupId);
    redis.disconnect();
    await pool.end().catch(() => undefined);
    if (privateRedis) {
      privateRedis.proc.kill('SIGTERM');
      await sleep(300);
      fs.rmSync(privateRedis.dir, { recursive: true, force: true });
    }
  }

  const costs = unitCostsFrom(result);
  result.unitCosts = costs;
  if (writeTo && costs && !failure) {
    // Merged into what is there: a run with --skip keeps the other phases' costs.
    const before = fs.existsSync(writeTo) ? (JSON.parse(fs.readFileSync(writeTo, 'utf8')) as { costs?: Partial<UnitCosts>; runs?: unknown[] }) : {};
    const command = `npm run bench:unit-costs -- ${argv.filter((a) => a !== '--json').join(' ')}`.trim();
    const runs = [...(before.runs ?? []), { measuredAt: result.date, command, phases: Object.keys(costs) }].slice(-10);
    fs.writeFileSync(writeTo, `${JSON.stringify({ machine: result.machine, costs: { ...before.costs, ...costs }, runs }, null, 2)}\n`);
    progress(`wrote ${path.relative(PROJECT_ROOT, writeTo)}`);
  }
  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    process.stdout.write(failure ? `unit costs: failed: ${failure.message}\n` : '');
    if (costs) for (const [k, v] of Object.entries(costs)) process.stdout.write(`${k.padEnd(32)} ${String(v)}\n`);
  }
  process.exit(failure ? 1 : 0);
}

/** The calculator's unit costs from a run's phases (missing ones stay out: the calculator keeps its defaults). */
function unitCostsFrom(r: Record<string, unknown>): Partial<UnitCosts> | undefined {
  const out: Partial<UnitCosts> = {};
  const set = (k: keyof UnitCosts, v: number | null | undefined) => {
    if (v !== null && v !== undefined && Number.isFinite(v)) out[k] = v;
  };
  // The pipeline's per-change costs at throughput (bulk); Postgres split into per row (bulk) and
  // per transaction (steady single-row minus bulk row).
  const c = r.changes as { steady: { usPerChange: Record<string, number | null> }; bulk: { usPerChange: Record<string, number | null> } } | undefined;
  if (c) {
    set('processorUsPerChange', c.bulk.usPerChange.processor);
    set('connectUsPerChange', c.bulk.usPerChange.connect);
    set('kafkaUsPerChange', c.bulk.usPerChange.kafka);
    set('redisUsPerApply', c.bulk.usPerChange.redis);
    // Postgres: a row inside a bulk transaction, and the rest of a single-row transaction's cost.
    set('postgresUsPerChange', c.bulk.usPerChange.postgres);
    const single = c.steady.usPerChange.postgres;
    const row = c.bulk.usPerChange.postgres;
    if (single !== null && single !== undefined && row !== null && row !== undefined) set('postgresUsPerTransaction', Math.max(0, +(single - row).toFixed(1)));
  }
  type Per = Record<string, number | null>;
  const p = r.purchase as { sell: { usPerAcceptedPurchase: Per }; refuse: { usPerAttempt: Per }; refuseHot: { usPerAttempt: Per } } | undefined;
  if (p) {
    set('gatewayUsPerAttempt', p.refuse.usPerAttempt.gateway);
    set('gatewayUsPerHotAttempt', p.refuseHot.usPerAttempt.gateway);
    set('gatewayUsPerAcceptedPurchase', p.sell.usPerAcceptedPurchase.gateway);
    set('redisUsPerAttempt', p.refuse.usPerAttempt.redis);
    set('redisUsPerHotAttempt', p.refuseHot.usPerAttempt.redis);
    set('redisUsPerAcceptedPurchase', p.sell.usPerAcceptedPurchase.redis);
    set('postgresUsPerOrder', p.sell.usPerAcceptedPurchase.postgres);
    set('connectUsPerOrder', p.sell.usPerAcceptedPurchase.connect);
  }
  const fr = r.feedRead as { usPerEntryRead: number | null } | undefined;
  if (fr) set('redisUsPerFeedEntryRead', fr.usPerEntryRead);
  const f = r.fanout as { fixedCores: number; perEntryUs: number; perFrameUs: number; perItemUs: number } | undefined;
  if (f) {
    set('gatewayFixedCores', f.fixedCores);
    set('gatewayUsPerFeedEntry', f.perEntryUs);
    set('gatewayUsPerFrame', f.perFrameUs);
    set('gatewayUsPerItem', f.perItemUs);
  }
  return Object.keys(out).length ? out : undefined;
}

// Run only as a script: tools/capacity/check.ts imports fanoutRun.
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) await main();
