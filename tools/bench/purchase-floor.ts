/**
 * Benchmark: the purchase path against the HTTP floor (issue 16), in one run.
 *
 * Sold-out attempts: the bare node:http floor server (tools/bench/http-floor-server.ts: parse the
 * JSON body, answer a fixed 409), the same with one gate-shaped Lua call on the stack's Redis per
 * attempt (`redis-floor`: the floor of any endpoint that asks Redis before answering) and the real
 * gateway (`gateway/main.ts`, one process unless GATEWAY_WORKERS says otherwise, rate limits off,
 * a stock processor feeding its views) answer the same load child (tools/bench/flash-sale-load.ts:
 * --clients keep-alive connections, --attempts purchases of qty 1 of a SKU with 0 available, the
 * storefront key acting for a random customer).
 * The servers take turns, ABBA (A B C, then C B A, ...: --rounds), each after an unmeasured
 * warm-up run of its own. With `--base DIR` a gateway from another checkout (DIR/gateway/main.ts,
 * e.g. main's commit; its node_modules must resolve) is a third server in the same rounds,
 * sharing the processor and the views: before and after, side by side. `--base-node-flags
 * "FLAGS"` adds node flags to the base gateway's (after the servers' own: a later V8 flag wins),
 * e.g. `--base . --base-node-flags "--max-semi-space-size=64"` compares a setting on one checkout.
 *
 * Per run: attempts/s, and CPU per attempt (µs, user+system from /proc/<pid>/stat, summed over
 * the server's process tree, from the moment the load child's connections are primed) of the
 * server and Redis (the stack's redis-server), and the load child's own (its whole run);
 * per round the ratios gateway/floor and gateway/redis-floor. Goal (issue 16): gateway >= 0.7x
 * the floor (median of the rounds' ratios); `--skip-floor` runs neither floor server.
 *
 * Long selling phase (`--selling N`, N runs): tools/bench/flash-sale.ts as it is, with
 * --attempts 40000 --clients 1000 --units 20000 (override with --selling-attempts/-clients/-units),
 * run as a child; from its JSON the accepted purchases/s (units / time to the last 201) of the gate
 * path and of the DB-only server, their ratio (goal >= 3x) and its correctness (oversell,
 * undersell, Postgres = the 201s).
 *
 * `--cpu-prof-dir DIR` writes a V8 CPU profile of the gateway (node --cpu-prof) when it stops.
 * Needs the native stack (`npm run stack -- up`). Load average and machine busy cores are
 * recorded with every run. Progress on stderr.
 *
 * Usage: npm run bench:purchase-floor -- [--rounds 2] [--attempts 60000] [--clients 1000]
 *          [--customers 100000] [--warmup 10000] [--max-seconds 60] [--base DIR] [--base-node-flags FLAGS]
 *          [--cpu-prof-dir DIR] [--selling N] [--skip-floor] [--skip-sold-out] [--json]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfigOrExit, type Config } from '../../lib/config.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, SERVER_NODE_FLAGS, spawnNode, startGateway, stopChild, type Child } from './lib/children.ts';
import { machineCpu } from './lib/cpu.ts';
import { freePort, waitHttp } from './lib/http.ts';
import { runLoadChild } from './lib/load-child.ts';
import { deleteGroup } from './lib/kafka-topics.ts';
import { deletePrefix } from './lib/redis-keys.ts';
import { progress, runId } from './lib/run.ts';
import { removeSku, stockAndAwaitView } from './lib/stock-view.ts';
import { createKafka } from '../../lib/kafka.ts';

const GOAL_FLOOR_RATIO = 0.7;
const GOAL_SELLING_RATIO = 3;
/** The storefront backend's development key (purchase:act-for), as bench:flash-sale sends it. */
const SHOP_KEY = 'dev-storefront-key';
const GATEWAY_ENV = { PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0', PURCHASE_MAX_PER_CUSTOMER: '1000' };

interface Server {
  name: 'floor' | 'redis-floor' | 'gateway' | 'base';
  child: Child;
  port: number;
}

interface Run {
  round: number;
  server: Server['name'];
  attemptsPerS: number;
  completed: number;
  /** Answers other than 409 sold_out (must be 0). */
  other: number;
  durationMs: number;
  /** CPU µs per answered attempt: the server (process tree), the load child, redis-server. */
  cpuUsPerAttempt: { server: number; load: number; redis: number | null };
  machineBusyCores: number;
  loadavg1: number;
}

// ---------------------------------------------------------------------------------------------
// CPU from /proc

/** user+system seconds of every process: pid -> [ppid, seconds, comm, cmdline]. */
function processTable(): Map<number, { ppid: number; cpuS: number; comm: string; cmd: string }> {
  const out = new Map<number, { ppid: number; cpuS: number; comm: string; cmd: string }>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = comm === 'redis-server' ? fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ') : '';
      out.set(Number(d), { ppid: Number(f[1]), cpuS: (Number(f[11]) + Number(f[12])) / 100, comm, cmd });
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU seconds of `pid` and its descendants (GATEWAY_WORKERS forks workers). */
function treeCpuS(table: ReturnType<typeof processTable>, pid: number): number {
  let sum = 0;
  for (const [p, e] of table) {
    for (let q = p, hops = 0; q > 1 && hops < 8; q = table.get(q)?.ppid ?? 0, hops++) {
      if (q === pid) {
        sum += e.cpuS;
        break;
      }
    }
  }
  return sum;
}

/** The stack's redis-server (started from STACK_DIR, or listening on REDIS_URL's port), if it runs on this machine. */
function redisPid(config: Readonly<Config>): number | undefined {
  const port = new URL(config.redis.url).port || '6379';
  for (const [pid, e] of processTable()) {
    if (e.comm === 'redis-server' && (e.cmd.includes(`${config.stack.dir}/`) || e.cmd.includes(`:${port} `))) return pid;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// sold-out attempts: floor vs gateway

/** The floor server; `redis`: with one gate-shaped Redis call per attempt (on the run's prefix). */
async function startFloor(redis: { prefix: string } | undefined): Promise<Server> {
  const port = await freePort();
  const name = redis ? 'redis-floor' : 'floor';
  const child = spawnNode(name, 'tools/bench/http-floor-server.ts', ['--port', String(port), ...(redis ? ['--redis'] : [])], {
    nodeFlags: SERVER_NODE_FLAGS,
    onStdoutLine: () => undefined,
    ...(redis ? { env: { REDIS_PREFIX: redis.prefix } } : {}),
  });
  await waitHttp(`http://127.0.0.1:${port}/`, 30_000, child);
  return { name, child, port };
}

/** A gateway from another checkout: `DIR/gateway/main.ts`, the same flags and environment as ours. */
async function startBaseGateway(dir: string, prefix: string, extraFlags: string[], stackDir: string): Promise<Server> {
  const port = await freePort();
  const child = spawnNode('base', path.join(dir, 'gateway', 'main.ts'), [], {
    nodeFlags: [...SERVER_NODE_FLAGS, ...extraFlags],
    // STACK_DIR: this stack's credentials (the other checkout has no .stack of its own).
    env: { REDIS_PREFIX: prefix, STACK_DIR: stackDir, GATEWAY_PORT: String(port), GATEWAY_METRICS_PORT: '0', GATEWAY_MAX_SUBSCRIPTIONS: '1000', LOG_LEVEL: 'warn', ...GATEWAY_ENV },
  });
  await waitHttp(`http://127.0.0.1:${port}/readyz`, 60_000, child);
  return { name: 'base', child, port };
}

interface FloorOptions {
  rounds: number;
  attempts: number;
  clients: number;
  customers: number;
  warmup: number;
  maxSeconds: number;
  base: string | undefined;
  /** Node flags added after the servers' own for the base gateway (a later V8 flag wins): compare settings of one checkout. */
  baseNodeFlags: string[];
  cpuProfDir: string | undefined;
  skipFloor: boolean;
}

async function soldOutRounds(config: Readonly<Config>, o: FloorOptions, id: string) {
  const pool = createPgPool(config.pg.url, { max: 2, application: 'invsync-bench-purchase-floor' });
  const redis = createRedis(config.redis);
  const kafka = createKafka({ connection: config.kafka, clientId: `bench-floor-${id}` });
  const sku = `FLOOR-${id.toUpperCase()}`;
  const prefix = `bpf-${id}`;
  const groupId = `bench-floor-${id}`;
  const servers: Server[] = [];
  let processor: Child | undefined;
  try {
    processor = spawnNode('processor', 'stream-processors/main.ts', [], {
      env: { REDIS_PREFIX: prefix, PROCESSOR_GROUP_ID: groupId, PROCESSOR_START_FROM: 'latest', PROCESSOR_METRICS_PORT: '0', PROCESSOR_RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'warn' },
    });
    const g = await startGateway({ prefix, ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}), env: GATEWAY_ENV });
    const proc = processor;
    // 0 on hand: every attempt is a sold-out refusal decided by the gate.
    await stockAndAwaitView(pool, g.url, [[sku, 0]], { alive: () => proc.alive() });
    if (!o.skipFloor) servers.push(await startFloor(undefined), await startFloor({ prefix }));
    servers.push({ name: 'gateway', child: g.child, port: g.port });
    if (o.base) servers.push(await startBaseGateway(o.base, prefix, o.baseNodeFlags, config.stack.dir));
    progress(`sold-out attempts on ${sku}: ${servers.map((s) => `${s.name} pid ${s.child.pid} port ${s.port}`).join(', ')}; processor pid ${processor.pid}`);
    const rpid = redisPid(config);
    const load = { attempts: o.attempts, clients: o.clients, customers: o.customers, maxSeconds: o.maxSeconds };
    for (const s of servers) {
      progress(`  warm-up ${s.name}: ${o.warmup} attempts`);
      await runLoadChild(s.port, sku, { ...load, attempts: o.warmup }, { apiKey: SHOP_KEY });
    }
    const runs: Run[] = [];
    for (let round = 0; round < o.rounds; round++) {
      // A B C, then C B A: each server's mean position is the same (ABBA).
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        // CPU is counted from the moment the load child's connections are open and primed: the
        // priming GET is express on a gateway and one line on a floor, and no attempt.
        let t0 = processTable();
        let m0 = machineCpu();
        const r = await runLoadChild(s.port, sku, load, {
          apiKey: SHOP_KEY,
          onPrimed: () => {
            t0 = processTable();
            m0 = machineCpu();
          },
        });
        const t1 = processTable();
        const m1 = machineCpu();
        const n = Math.max(1, r.completed);
        const us = (x: number) => Math.round((x * 1e6) / n);
        const wall = Math.max(0.001, (m1.totalS - m0.totalS) / os.cpus().length);
        const run: Run = {
          round: round + 1,
          server: s.name,
          attemptsPerS: r.attemptsPerS,
          completed: r.completed,
          other: r.completed - r.soldOut,
          durationMs: r.durationMs,
          cpuUsPerAttempt: {
            server: us(treeCpuS(t1, s.child.pid) - treeCpuS(t0, s.child.pid)),
            load: us(r.cpuS),
            redis: rpid === undefined ? null : us((t1.get(rpid)?.cpuS ?? 0) - (t0.get(rpid)?.cpuS ?? 0)),
          },
          machineBusyCores: +((m1.busyS - m0.busyS) / wall).toFixed(2),
          loadavg1: +os.loadavg()[0]!.toFixed(2),
        };
        runs.push(run);
        progress(
          `  round ${run.round} ${s.name}: ${run.attemptsPerS}/s, server ${run.cpuUsPerAttempt.server} µs/attempt, load ${run.cpuUsPerAttempt.load}, redis ${run.cpuUsPerAttempt.redis ?? '-'}; machine ${run.machineBusyCores} cores busy, load ${run.loadavg1}${run.other ? `; ${run.other} answers were not 409 sold_out: ${JSON.stringify(r.counts)}` : ''}`,
        );
      }
    }
    return { sku, runs, gatewayWorkers: process.env.GATEWAY_WORKERS ?? '1' };
  } finally {
    for (const s of servers) await stopChild(s.child, 15_000);
    await stopChild(processor, 30_000);
    await deleteGroup(kafka, groupId);
    await deletePrefix(redis, prefix).catch((err: Error) => progress(`  cleanup: could not delete ${prefix}:*: ${err.message}`));
    redis.disconnect();
    await removeSku(pool, sku);
    await pool.end().catch(() => undefined);
  }
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Per round, `a`'s attempts/s over `b`'s; their median. */
function ratios(runs: Run[], a: Server['name'], b: Server['name']) {
  const byRound = new Map<number, Partial<Record<Server['name'], number>>>();
  for (const r of runs) byRound.set(r.round, { ...byRound.get(r.round), [r.server]: r.attemptsPerS });
  const perRound = [...byRound.values()].filter((x) => x[a] && x[b]).map((x) => +(x[a]! / x[b]!).toFixed(3));
  return { perRound, median: median(perRound) };
}

function summarise(runs: Run[]) {
  const names = [...new Set(runs.map((r) => r.server))];
  return Object.fromEntries(
    names.map((n) => {
      const mine = runs.filter((r) => r.server === n);
      return [n, { attemptsPerS: median(mine.map((r) => r.attemptsPerS)), serverUsPerAttempt: median(mine.map((r) => r.cpuUsPerAttempt.server)), redisUsPerAttempt: median(mine.flatMap((r) => (r.cpuUsPerAttempt.redis === null ? [] : [r.cpuUsPerAttempt.redis]))) }];
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// long selling phase: bench:flash-sale as it is

interface FlashPhase {
  accepted: number;
  lastAcceptedMs: number | null;
  attemptsPerS: number;
  oversell: number;
  undersell: number;
  postgres: { ok: boolean };
  cpu: { serverCores: number; machineBusyCores: number; others: Record<string, number> };
}

async function sellingRun(args: string[]) {
  const out: string[] = [];
  const child = spawnNode('flash-sale', 'tools/bench/flash-sale.ts', ['--json', ...args], { onStdoutLine: (l) => out.push(l) });
  const code = await child.exited;
  let r: { gate?: FlashPhase; dbOnly?: FlashPhase; correct?: boolean; error?: string; gateError?: string; dbOnlyError?: string };
  try {
    r = JSON.parse(out.join('\n')) as typeof r;
  } catch {
    throw new Error(`bench:flash-sale exited ${String(code)} without its JSON`);
  }
  const perS = (p: FlashPhase | undefined) => (p && p.lastAcceptedMs ? Math.round(p.accepted / (p.lastAcceptedMs / 1000)) : null);
  const gate = perS(r.gate);
  const dbOnly = perS(r.dbOnly);
  const brief = (p: FlashPhase | undefined) =>
    p && { accepted: p.accepted, soldOutAfterMs: p.lastAcceptedMs, acceptedPerS: perS(p), attemptsPerS: p.attemptsPerS, oversell: p.oversell, undersell: p.undersell, postgresOk: p.postgres.ok, serverCores: p.cpu.serverCores, machineBusyCores: p.cpu.machineBusyCores, otherCores: p.cpu.others };
  return {
    gate: brief(r.gate),
    dbOnly: brief(r.dbOnly),
    ratio: gate && dbOnly ? +(gate / dbOnly).toFixed(2) : null,
    correct: r.correct === true,
    loadavg1: +os.loadavg()[0]!.toFixed(2),
    ...(r.error || r.gateError || r.dbOnlyError ? { error: r.error ?? r.gateError ?? r.dbOnlyError } : {}),
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const str = args.text;
  const o: FloorOptions = {
    rounds: Math.round(args.get('rounds', 2)),
    attempts: Math.round(args.get('attempts', 60_000)),
    clients: Math.round(args.get('clients', 1000)),
    customers: Math.round(args.get('customers', 100_000)),
    warmup: Math.round(args.get('warmup', 10_000)),
    maxSeconds: args.get('max-seconds', 60),
    base: str('base') && path.resolve(str('base')!),
    baseNodeFlags: (str('base-node-flags') ?? '').split(/\s+/).filter(Boolean),
    cpuProfDir: str('cpu-prof-dir') && path.resolve(str('cpu-prof-dir')!),
    skipFloor: args.has('skip-floor'),
  };
  if (o.base && !fs.existsSync(path.join(o.base, 'gateway', 'main.ts'))) {
    process.stderr.write(`error: --base ${o.base} has no gateway/main.ts\n`);
    process.exit(2);
  }
  const sellingRuns = args.has('selling') ? Math.round(args.get('selling', 1)) : 0;
  const sellingArgs = ['--attempts', String(args.get('selling-attempts', 40_000)), '--clients', String(args.get('selling-clients', 1000)), '--units', String(args.get('selling-units', 20_000))];
  const skipSoldOut = args.has('skip-sold-out');
  const config = loadConfigOrExit();
  const id = runId();
  const servers = 1 + (o.skipFloor ? 0 : 2) + (o.base ? 1 : 0);
  const soldOutBudget = skipSoldOut ? 0 : servers * (o.rounds + 1) * (o.maxSeconds + 60) + 300;
  installHardLimit((soldOutBudget + sellingRuns * 700) * 1000, 'error: the benchmark ran past its time limit; killing children', ['SIGINT', 'SIGTERM']);
  const result: Record<string, unknown> = { benchmark: 'purchase-floor', machine: machine(), date: new Date().toISOString(), loadavgStart: os.loadavg().map((x) => +x.toFixed(2)), options: o };
  let failed = false;
  try {
    if (!skipSoldOut) {
      const s = await soldOutRounds(config, o, id);
      const gw = ratios(s.runs, 'gateway', 'floor');
      const gwRedis = ratios(s.runs, 'gateway', 'redis-floor');
      const base = o.base ? ratios(s.runs, 'gateway', 'base') : undefined;
      result.soldOut = {
        sku: s.sku,
        gatewayWorkers: s.gatewayWorkers,
        runs: s.runs,
        summary: summarise(s.runs),
        gatewayOverFloor: gw,
        gatewayOverRedisFloor: gwRedis,
        redisFloorOverFloor: ratios(s.runs, 'redis-floor', 'floor'),
        ...(base ? { gatewayOverBase: base, baseOverFloor: ratios(s.runs, 'base', 'floor') } : {}),
        goal: { goal: GOAL_FLOOR_RATIO, measured: gw.median, met: gw.median !== null && gw.median >= GOAL_FLOOR_RATIO },
        correct: s.runs.every((r) => r.other === 0),
      };
      if (s.runs.some((r) => r.other !== 0)) failed = true;
    }
    if (sellingRuns > 0) {
      const runs = [];
      for (let i = 0; i < sellingRuns; i++) {
        progress(`long selling phase ${i + 1}/${sellingRuns}: bench:flash-sale ${sellingArgs.join(' ')}`);
        const r = await sellingRun(sellingArgs);
        progress(`  gate ${r.gate?.acceptedPerS ?? '-'} accepted/s, DB-only ${r.dbOnly?.acceptedPerS ?? '-'} accepted/s: ${r.ratio ?? '-'}x; correct ${r.correct}`);
        runs.push(r);
        if (!r.correct) failed = true;
      }
      const med = median(runs.flatMap((r) => (r.ratio === null ? [] : [r.ratio])));
      result.selling = { args: sellingArgs, runs, goal: { goal: GOAL_SELLING_RATIO, measured: med, met: med !== null && med >= GOAL_SELLING_RATIO } };
    }
  } catch (err) {
    failed = true;
    result.error = (err as Error).message;
    progress(`error: ${(err as Error).message}`);
  } finally {
    killAllChildren();
  }
  result.loadavgEnd = os.loadavg().map((x) => +x.toFixed(2));
  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    const lines: string[] = [];
    type Ratio = { perRound: number[]; median: number | null };
    const so = result.soldOut as { summary: Record<string, { attemptsPerS: number; serverUsPerAttempt: number; redisUsPerAttempt: number | null }>; gatewayOverFloor: Ratio; gatewayOverRedisFloor: Ratio; gatewayOverBase?: { perRound: number[]; median: number | null }; goal: { met: boolean } } | undefined;
    if (so) {
      for (const [n, x] of Object.entries(so.summary)) lines.push(`${n}: ${x.attemptsPerS}/s (median), server ${x.serverUsPerAttempt} µs/attempt, redis ${x.redisUsPerAttempt ?? '-'} µs/attempt`);
      lines.push(`gateway / floor: ${so.gatewayOverFloor.perRound.join(', ')} (median ${so.gatewayOverFloor.median}); goal >= ${GOAL_FLOOR_RATIO}: ${so.goal.met ? 'met' : 'MISSED'}`);
      lines.push(`gateway / redis-floor: ${so.gatewayOverRedisFloor.perRound.join(', ')} (median ${so.gatewayOverRedisFloor.median})`);
      if (so.gatewayOverBase) lines.push(`gateway / base: ${so.gatewayOverBase.perRound.join(', ')} (median ${so.gatewayOverBase.median})`);
    }
    const se = result.selling as { runs: Array<{ ratio: number | null; gate?: { acceptedPerS: number | null }; dbOnly?: { acceptedPerS: number | null }; correct: boolean }>; goal: { measured: number | null; met: boolean } } | undefined;
    if (se) {
      for (const r of se.runs) lines.push(`selling: gate ${r.gate?.acceptedPerS ?? '-'} accepted/s, DB-only ${r.dbOnly?.acceptedPerS ?? '-'}: ${r.ratio ?? '-'}x, correct ${r.correct}`);
      lines.push(`accepted/s gate / DB-only: median ${se.goal.measured}; goal >= ${GOAL_SELLING_RATIO}: ${se.goal.met ? 'met' : 'MISSED'}`);
    }
    if (result.error) lines.push(`failed: ${String(result.error)}`);
    lines.push(`load average ${(result.loadavgStart as number[]).join(' ')} -> ${(result.loadavgEnd as number[]).join(' ')}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  process.exit(failed ? 1 : 0);
}

await main();
