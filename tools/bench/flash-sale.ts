/**
 * Benchmark: a flash sale, N buyers racing for U units of one hot SKU, through the full HTTP
 * purchase path (Redis gate + group-committed write-back) side by side with a database-only
 * baseline, in one run.
 *
 * Phase "gate": a fresh SKU `FLASH-<run id>` gets --units on hand in `stock_levels` (split over
 * --locations rows). Child processes on a unique REDIS_PREFIX: the stock processor (own consumer
 * group from the end of the CDC topic, as in tools/bench/e2e-latency.ts), which gives the gate its view
 * of the SKU, and a gateway (`gateway/main.ts`) with the purchase rate limits off
 * (PURCHASE_RATE_*_PER_SEC=0) and PURCHASE_MAX_PER_CUSTOMER=1000. Once GET /v1/stock/<sku> shows
 * available = units, a kafkajs consumer reads `orders.events` from its current end, and the load
 * child (tools/bench/flash-sale-load.ts: raw HTTP/1.1 keep-alive over --clients connections) sends
 * --attempts purchases of qty 1, each with a fresh Idempotency-Key and a random customer.
 *
 * Before the measured load, each server gets a warm-up run of --warmup attempts (default
 * min(5,000, attempts/4)) on its own SKU with 50 units, through the same load child, so that
 * neither side is measured with a cold JIT, cold connection pools or unloaded scripts.
 *
 * Phase "db-only": the same load against tools/bench/db-only-purchase-server.ts (one Postgres round
 * trip per attempt, no Redis; its own tables), with --pool Postgres connections.
 *
 * Per phase: attempts/s, latency (all, 201, 409 sold_out), sold-out refusals/s after the last 201,
 * oversell (accepted - units, must be 0) and undersell (units - accepted, must be 0), the same
 * checked against Postgres (sum(reserved) and orders of the SKU), CPU of the server and the load
 * child. Gate phase also: when every order id a 201 returned had appeared on `orders.events`.
 * Goal lines: full HTTP path >= 5x the DB-only attempts/s; sold-out refusals >= 20,000/s.
 *
 * Needs the native stack (`npm run stack -- up`; migrations applied). Children are stopped, the
 * SKU's rows (stock, orders, outbox), Redis keys and consumer groups removed at the end, also on
 * failure (`--keep` keeps the Postgres rows). Progress on stderr.
 *
 * Usage: npm run bench:flash-sale -- [--attempts 100000] [--clients 2000] [--units 1000]
 *          [--customers 100000] [--locations 1] [--pool 20] [--max-seconds 120]
 *          [--warmup N | --no-warmup] [--skip-gate] [--skip-db-only] [--keep] [--json]
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer } from 'kafkajs';
import type pg from 'pg';
import { loadConfigOrExit, PROJECT_ROOT, type Config } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { TOPICS } from '../../lib/topics.ts';
import { machine, parseArgs } from './args.ts';
import { cleanupDbOnly, ensureDbOnlySchema, stockDbOnly } from './db-only-purchase-server.ts';
import type { LatencyMs, LoadSummary } from './flash-sale-load.ts';
import { installHardLimit, killAllChildren, SERVER_NODE_FLAGS, spawnNode, startGateway, stopChild, type Child } from './lib/children.ts';
import { runLoadChild } from './lib/load-child.ts';
import { removeSku, stockAndAwaitView } from './lib/stock-view.ts';
import { machineCpu, procStats } from './lib/cpu.ts';
import { consumeFromEnd, deleteGroup } from './lib/kafka-topics.ts';
import { deletePrefix } from './lib/redis-keys.ts';
import { progress, runId } from './lib/run.ts';
import { stats, type Stats } from './lib/stats.ts';
import { redactUrl } from '../../lib/redact.ts';

const GOAL_RATIO = 5;
const GOAL_SOLD_OUT_PER_S = 20_000;

interface Options {
  attempts: number;
  clients: number;
  units: number;
  customers: number;
  locations: number;
  pool: number;
  maxSeconds: number;
  /** Attempts of the warm-up run (on its own SKU with WARMUP_UNITS units) before the measured one; 0: none. */
  warmup: number;
}

const WARMUP_UNITS = 50;

interface PhaseResult {
  server: 'gateway' | 'db-only';
  completed: number;
  failed: number;
  timedOut: boolean;
  durationMs: number;
  attemptsPerS: number;
  counts: Record<string, number>;
  accepted: number;
  soldOut: number;
  other: number;
  latencyMs: { all: LatencyMs; accepted: LatencyMs; soldOut: LatencyMs };
  /** When the last 201 arrived (ms from the start); sold-out refusals/s from then to the end. */
  lastAcceptedMs: number | null;
  soldOutRefusalsPerS: number | null;
  soldOutAfterSellOut: number;
  oversell: number;
  undersell: number;
  /** Postgres after the phase: units reserved on the SKU, orders of the SKU, and whether they match the 201s. */
  postgres: { reserved: number; orders: number; ordersNotIn201s: number; ordersMissing: number; ok: boolean };
  /**
   * Gate phase: order ids on orders.events; allSeenMs: from the start of the load until the last
   * of them arrived; from201Ms: arrival minus the 201's receipt (negative: on the topic first).
   */
  ordersEvents?: { expected: number; seen: number; allSeenMs: number | null; from201Ms: Stats | null };
  /** Cores used during the measured load; `others`: the five busiest other commands (postgres, redis-server, java, ...). */
  cpu: { serverCores: number; loadCores: number; machineBusyCores: number; otherCores: number; others: Record<string, number> };
  /** Per second since the start: [201, 409 sold_out, other]. */
  timeline: Array<[number, number, number]>;
  /** The 10 slowest attempts: [sent ms from the start, latency ms, status, connection, tries]. */
  slowest: Array<[number, number, number, number, number]>;
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// plumbing

async function checkStack(config: Readonly<Config>, pool: pg.Pool): Promise<void> {
  const hint = 'start it with `npm run stack -- up` (it applies the migrations), then run this again';
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    throw new Error(`Postgres at ${config.pg.host}:${config.pg.port} is not reachable (${(err as Error).message}): the native stack is not up; ${hint}`);
  }
  const { rows } = await pool.query<{ t: string }>(`SELECT t FROM unnest(ARRAY['stock_levels', 'orders', 'order_lines', 'outbox']) AS t WHERE to_regclass(t) IS NULL`);
  if (rows.length) throw new Error(`table(s) ${rows.map((r) => r.t).join(', ')} missing: run \`npm run migrate\``);
  const redis = createRedis(config.redis);
  try {
    await Promise.race([redis.ping(), sleep(3000).then(() => Promise.reject(new Error('no answer in 3 s')))]);
  } catch (err) {
    throw new Error(`Redis at ${redactUrl(config.redis.url)} is not reachable (${(err as Error).message}); ${hint}`);
  } finally {
    redis.disconnect();
  }
  try {
    const res = await fetch(`${config.connect.url}/connectors/invsync-outbox/status`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { connector?: { state?: string } };
    if (body.connector?.state !== 'RUNNING') throw new Error(`outbox connector is ${body.connector?.state ?? `HTTP ${res.status}`}`);
  } catch (err) {
    throw new Error(`Kafka Connect at ${redactUrl(config.connect.url)} is not ready (${(err as Error).message}); ${hint}`);
  }
}

/** The gateway's buyers authenticate as the storefront backend (development key, loopback-only). */
const GATEWAY_SHOP_KEY = 'dev-storefront-key';

/** CPU seconds so far of every process, by pid: [command name, seconds]. */
function allProcessesCpu(): Map<number, [string, number]> {
  const out = new Map<number, [string, number]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      let comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm === 'node') {
        // Name node processes by their script (the processor child, vitest, tsc, ...).
        const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        const script = argv.slice(1).find((a) => /\.(ts|js|mjs|cjs)$/.test(a) && !a.includes('/tsx/dist/') && !a.includes('suppress-warnings'));
        if (script) comm = `node ${script.replace(/^.*node_modules\//, '').replace(`${PROJECT_ROOT}/`, '')}`;
      }
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), [comm, (Number(f[11]) + Number(f[12])) / 100]);
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU use of the server and the load child during a phase, and of the busiest other commands. */
function cpuMeter(serverPid: number) {
  const m0 = machineCpu();
  const s0 = procStats(serverPid)?.cpuS ?? 0;
  const p0 = allProcessesCpu();
  return (loadCpuS: number) => {
    const m1 = machineCpu();
    const s1 = procStats(serverPid)?.cpuS ?? s0;
    const byCommand = new Map<string, number>();
    for (const [pid, [comm, cpuS]] of allProcessesCpu()) {
      if (pid === serverPid) continue;
      const d = cpuS - (p0.get(pid)?.[1] ?? 0);
      if (d > 0) byCommand.set(comm, (byCommand.get(comm) ?? 0) + d);
    }
    const wall = Math.max(0.001, (m1.totalS - m0.totalS) / Math.max(1, machine().cpus));
    const serverCores = (s1 - s0) / wall;
    const loadCores = loadCpuS / wall;
    const machineBusyCores = (m1.busyS - m0.busyS) / wall;
    const r = (x: number) => +x.toFixed(2);
    // The load child has exited by now (not in the scan); processes that started during the phase count whole.
    const others = Object.fromEntries([...byCommand].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([c, x]) => [c, r(x / wall)]));
    return { serverCores: r(serverCores), loadCores: r(loadCores), machineBusyCores: r(machineBusyCores), otherCores: r(Math.max(0, machineBusyCores - serverCores - loadCores)), others };
  };
}

function phaseFrom(server: PhaseResult['server'], s: LoadSummary, units: number): Omit<PhaseResult, 'postgres' | 'cpu'> {
  return {
    server,
    completed: s.completed,
    failed: s.failed,
    timedOut: s.timedOut,
    durationMs: s.durationMs,
    attemptsPerS: s.attemptsPerS,
    counts: s.counts,
    accepted: s.accepted,
    soldOut: s.soldOut,
    other: s.other,
    latencyMs: s.latencyMs,
    lastAcceptedMs: s.lastAcceptedMs,
    soldOutRefusalsPerS: s.afterSellOut.soldOutPerS,
    soldOutAfterSellOut: s.afterSellOut.soldOut,
    oversell: Math.max(0, s.accepted - units),
    undersell: Math.max(0, units - s.accepted),
    timeline: s.timeline,
    slowest: s.slowest,
  };
}

/** Calls `step` until `done` holds for its value or `ms` pass; returns the last value. */
async function until<T>(ms: number, step: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await step();
    if (done(v) || Date.now() > deadline) return v;
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// phase: the gateway

async function gatePhase(config: Readonly<Config>, pool: pg.Pool, o: Options, id: string): Promise<PhaseResult> {
  const sku = `FLASH-${id.toUpperCase()}`;
  const warmSku = `${sku}-W`;
  const prefix = `bfs-${id}`;
  const groupId = `bench-flash-${id}`;
  const ordersGroupId = `bench-flash-orders-${id}`;
  const kafka = createKafka({ connection: config.kafka, clientId: `bench-flash-${id}` });
  const redis = createRedis(config.redis);
  let processor: Child | undefined;
  let gateway: Child | undefined;
  let consumer: Consumer | undefined;
  try {
    processor = spawnNode('processor', 'stream-processors/main.ts', [], {
      env: { REDIS_PREFIX: prefix, PROCESSOR_GROUP_ID: groupId, PROCESSOR_START_FROM: 'latest', PROCESSOR_METRICS_PORT: '0', PROCESSOR_RECONCILE_INTERVAL_S: '0', LOG_LEVEL: 'warn' },
    });
    const g = await startGateway({
      prefix,
      ...(process.env.BENCH_CPU_PROF_DIR ? { cpuProfDir: process.env.BENCH_CPU_PROF_DIR } : {}),
      env: { PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0', PURCHASE_MAX_PER_CUSTOMER: '1000' },
    });
    gateway = g.child;
    progress(`  processor pid ${processor.pid}, gateway pid ${gateway.pid} on ${g.url}; stocking ${sku} with ${o.units} units over ${o.locations} location(s)`);

    // Stock the SKU; touch its rows until the processor (which joins its group from the end of the
    // CDC topic) has folded them and the gateway reports the full availability.
    const stocked: Array<[string, number]> = [[sku, o.units]];
    if (o.warmup > 0) stocked.push([warmSku, WARMUP_UNITS]);
    const proc = processor;
    await stockAndAwaitView(pool, g.url, stocked, { locations: o.locations, alive: () => proc.alive() });
    if (o.warmup > 0) {
      progress(`  warm-up: ${o.warmup} attempts on ${warmSku} (${WARMUP_UNITS} units)`);
      const w = await runLoadChild(g.port, warmSku, { ...o, attempts: o.warmup }, { apiKey: GATEWAY_SHOP_KEY });
      progress(`  warm-up: ${w.attemptsPerS}/s, 201 ${w.accepted}, sold_out ${w.soldOut}, other ${w.other}`);
    }

    // Order ids on orders.events, from the topic's current end.
    const seenAt = new Map<string, number>();
    consumer = await consumeFromEnd(kafka, TOPICS.ordersEvents, ordersGroupId, async ({ message }) => {
      const key = message.key?.toString();
      if (!key || String(message.headers?.eventType ?? '') !== 'OrderPlaced') return;
      let orderId = key;
      try {
        orderId = (JSON.parse(message.value?.toString() ?? '{}') as { orderId?: string }).orderId ?? key;
      } catch {
        // keep the key
      }
      if (orderId !== key) progress(`  orders.events: key ${key} carries orderId ${orderId}`);
      if (!seenAt.has(key)) seenAt.set(key, Date.now());
    });
    await sleep(1000); // the consumer's group join
    progress(`  ${sku} available = ${o.units} through the gateway; ${o.attempts} attempts over ${o.clients} connections`);

    const meter = cpuMeter(gateway.pid);
    const s = await runLoadChild(g.port, sku, o, { apiKey: GATEWAY_SHOP_KEY });
    const cpu = meter(s.cpuS);
    const base = phaseFrom('gateway', s, o.units);
    progress(`  gateway: ${s.completed} answered in ${(s.durationMs / 1000).toFixed(1)} s (${s.attemptsPerS}/s): 201 ${s.accepted}, sold_out ${s.soldOut}, other ${s.other}`);

    // Every order id a 201 returned, on orders.events.
    const expected = new Map(s.orders);
    const missing = () => [...expected.keys()].filter((k) => !seenAt.has(k)).length;
    await until(60_000, async () => missing(), (n) => n === 0);
    const arrivals = [...expected.keys()].filter((k) => seenAt.has(k)).map((k) => seenAt.get(k)! - s.startedAt);
    // Negative when the event was on the topic before the load client had read its 201.
    const from201 = [...expected].filter(([k]) => seenAt.has(k)).map(([k, t]) => Math.round(seenAt.get(k)! - s.startedAt - t));
    const ordersEvents = {
      expected: expected.size,
      seen: arrivals.length,
      allSeenMs: arrivals.length === expected.size && arrivals.length > 0 ? Math.max(...arrivals) : null,
      from201Ms: from201.length ? stats(from201) : null,
    };

    // Postgres: reserved units and orders of the SKU.
    const pgState = async () => {
      const r = await pool.query<{ reserved: string; orders: string[] | null }>(
        `SELECT (SELECT coalesce(sum(reserved), 0) FROM stock_levels WHERE sku = $1) AS reserved,
                (SELECT array_agg(o.id::text) FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE l.sku = $1 AND o.status = 'reserved') AS orders`,
        [sku],
      );
      return { reserved: Number(r.rows[0]!.reserved), orders: r.rows[0]!.orders ?? [] };
    };
    const st = await until(10_000, pgState, (v) => v.reserved === s.accepted && v.orders.length === s.accepted);
    const dbIds = new Set(st.orders);
    const postgres = {
      reserved: st.reserved,
      orders: st.orders.length,
      ordersNotIn201s: st.orders.filter((x) => !expected.has(x)).length,
      ordersMissing: [...expected.keys()].filter((x) => !dbIds.has(x)).length,
      ok: false,
    };
    postgres.ok = st.reserved === s.accepted && st.reserved <= o.units && postgres.ordersNotIn201s === 0 && postgres.ordersMissing === 0;
    return { ...base, postgres, ordersEvents, cpu };
  } finally {
    progress('  gate phase: stopping the gateway and the processor, removing the run data');
    await consumer?.disconnect().catch(() => undefined);
    await stopChild(gateway, 15_000);
    await stopChild(processor, 30_000);
    await deleteGroup(kafka, groupId);
    await deleteGroup(kafka, ordersGroupId);
    await deletePrefix(redis, prefix).catch((err: Error) => progress(`  cleanup: could not delete ${prefix}:*: ${err.message}`));
    redis.disconnect();
    if (!keepRows) for (const x of [sku, warmSku]) await removeSku(pool, x);
  }
}

// ---------------------------------------------------------------------------------------------
// phase: the database-only baseline

async function dbOnlyPhase(pool: pg.Pool, o: Options, id: string): Promise<PhaseResult> {
  const sku = `FLASH-DB-${id.toUpperCase()}`;
  const warmSku = `${sku}-W`;
  let server: Child | undefined;
  try {
    await ensureDbOnlySchema(pool);
    await stockDbOnly(pool, sku, o.units);
    if (o.warmup > 0) await stockDbOnly(pool, warmSku, WARMUP_UNITS);
    let resolvePort!: (p: number) => void;
    const portP = new Promise<number>((r) => (resolvePort = r));
    server = spawnNode('db-only', 'tools/bench/db-only-purchase-server.ts', ['--port', '0', '--pool', String(o.pool), '--max-per-customer', '1000'], {
      nodeFlags: SERVER_NODE_FLAGS,
      onStdoutLine: (line) => {
        const m = /^listening (\d+)$/.exec(line);
        if (m) resolvePort(Number(m[1]));
        else progress(`  [db-only] ${line}`);
      },
    });
    const child = server;
    const port = await Promise.race([
      portP,
      child.exited.then((c) => Promise.reject(new Error(`the DB-only server exited (${String(c)}) before listening`))),
      sleep(30_000).then(() => Promise.reject(new Error('the DB-only server did not listen within 30 s'))),
    ]);
    if (o.warmup > 0) {
      progress(`  warm-up: ${o.warmup} attempts on ${warmSku} (${WARMUP_UNITS} units)`);
      const w = await runLoadChild(port, warmSku, { ...o, attempts: o.warmup });
      progress(`  warm-up: ${w.attemptsPerS}/s, 201 ${w.accepted}, sold_out ${w.soldOut}, other ${w.other}`);
    }
    progress(`  DB-only server pid ${server.pid} on 127.0.0.1:${port} (pool ${o.pool}); ${sku} has ${o.units} units; ${o.attempts} attempts over ${o.clients} connections`);
    const meter = cpuMeter(server.pid);
    const s = await runLoadChild(port, sku, o);
    const cpu = meter(s.cpuS);
    const base = phaseFrom('db-only', s, o.units);
    progress(`  db-only: ${s.completed} answered in ${(s.durationMs / 1000).toFixed(1)} s (${s.attemptsPerS}/s): 201 ${s.accepted}, sold_out ${s.soldOut}, other ${s.other}`);
    const r = await pool.query<{ reserved: number | null; ids: string[] | null }>(
      `SELECT (SELECT reserved FROM bench_db_only_stock WHERE sku = $1) AS reserved,
              (SELECT array_agg(id::text) FROM bench_db_only_orders WHERE items @> $2::jsonb) AS ids`,
      [sku, JSON.stringify([{ sku }])],
    );
    const ids = r.rows[0]!.ids ?? [];
    const reserved = r.rows[0]!.reserved ?? 0;
    const expected = new Set(s.orders.map(([k]) => k));
    const dbIds = new Set(ids);
    const postgres = {
      reserved,
      orders: ids.length,
      ordersNotIn201s: ids.filter((x) => !expected.has(x)).length,
      ordersMissing: [...expected].filter((x) => !dbIds.has(x)).length,
      ok: false,
    };
    postgres.ok = reserved === s.accepted && reserved <= o.units && postgres.ordersNotIn201s === 0 && postgres.ordersMissing === 0;
    return { ...base, postgres, cpu };
  } finally {
    progress('  db-only phase: stopping the server, removing its rows');
    await stopChild(server, 5000);
    if (!keepRows) for (const x of [sku, warmSku]) await cleanupDbOnly(pool, x).catch((err: Error) => progress(`  cleanup: could not delete ${x}: ${err.message}`));
  }
}

// ---------------------------------------------------------------------------------------------
// the benchmark

let keepRows = false;

function phaseOk(p: PhaseResult | undefined): boolean {
  return !p || (!p.error && p.oversell === 0 && p.undersell === 0 && p.postgres.ok && p.failed === 0 && (!p.ordersEvents || p.ordersEvents.seen === p.ordersEvents.expected));
}

function describe(p: PhaseResult): string[] {
  const l = (x: LatencyMs) => `p50 ${x.p50 ?? '-'} / p99 ${x.p99 ?? '-'} ms`;
  const lines = [
    `${p.server}: ${p.completed.toLocaleString('en-US')} attempts in ${(p.durationMs / 1000).toFixed(1)} s = ${p.attemptsPerS.toLocaleString('en-US')}/s; 201 ${p.accepted}, 409 sold_out ${p.soldOut}, other ${p.other}${p.failed ? `, failed ${p.failed}` : ''}${p.timedOut ? ' (TIMED OUT)' : ''}`,
    `  latency: all ${l(p.latencyMs.all)}; 201 ${l(p.latencyMs.accepted)}; sold_out ${l(p.latencyMs.soldOut)}`,
    `  sold out after ${p.lastAcceptedMs ?? '-'} ms; then ${p.soldOutRefusalsPerS?.toLocaleString('en-US') ?? '-'} sold-out refusals/s (${p.soldOutAfterSellOut} answers)`,
    `  oversell ${p.oversell}, undersell ${p.undersell}; Postgres: reserved ${p.postgres.reserved}, orders ${p.postgres.orders}${p.postgres.ok ? ' (match the 201s)' : ` (MISMATCH: ${p.postgres.ordersNotIn201s} orders without a 201, ${p.postgres.ordersMissing} 201s without an order)`}`,
  ];
  if (p.ordersEvents) {
    const e = p.ordersEvents;
    lines.push(
      `  orders.events: ${e.seen}/${e.expected} order ids seen${e.allSeenMs === null ? '' : `, all by ${e.allSeenMs} ms from the start`}${e.from201Ms ? `; 201 receipt -> on the topic p50 ${e.from201Ms.p50} / p99 ${e.from201Ms.p99} ms` : ''}`,
    );
  }
  const others = Object.entries(p.cpu.others).map(([c, x]) => `${c} ${x}`).join(', ');
  lines.push(`  cores: server ${p.cpu.serverCores}, load client ${p.cpu.loadCores}, machine busy ${p.cpu.machineBusyCores} (other ${p.cpu.otherCores}: ${others})`);
  if (Object.keys(p.counts).some((k) => k !== '201' && k !== '409 sold_out')) lines.push(`  responses: ${JSON.stringify(p.counts)}`);
  return lines;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const o: Options = {
    attempts: Math.round(args.get('attempts', 100_000)),
    clients: Math.round(args.get('clients', 2000)),
    units: Math.round(args.get('units', 1000)),
    customers: Math.round(args.get('customers', 100_000)),
    locations: Math.round(args.get('locations', 1)),
    pool: Math.round(args.get('pool', 20)),
    maxSeconds: args.get('max-seconds', 120),
    warmup: 0,
  };
  o.warmup = args.has('no-warmup') ? 0 : Math.round(args.get('warmup', Math.min(5000, Math.ceil(o.attempts / 4))));
  keepRows = args.has('keep');
  const skipGate = args.has('skip-gate');
  const skipDbOnly = args.has('skip-db-only');
  const config = loadConfigOrExit();
  const id = runId();
  const pool = createPgPool(config.pg.url, { max: 4, application: 'invsync-bench-flash-sale' });
  installHardLimit((2 * (2 * o.maxSeconds + 240) + 60) * 1000, 'error: the benchmark ran past its time limit; killing children', ['SIGINT', 'SIGTERM']);
  const result: Record<string, unknown> = { benchmark: 'flash-sale', machine: machine(), date: new Date().toISOString(), ...o };
  let gate: PhaseResult | undefined;
  let dbOnly: PhaseResult | undefined;
  let failure: Error | undefined;
  try {
    await checkStack(config, pool);
    progress(`flash sale: ${o.attempts} attempts for ${o.units} units over ${o.clients} connections, gateway then DB-only (run ${id})`);
    if (!skipGate) {
      progress('phase gate: the gateway (Redis gate + write-back)');
      try {
        gate = await gatePhase(config, pool, o, id);
      } catch (err) {
        failure = err as Error;
        progress(`error: gate phase: ${failure.message}`);
        result.gateError = failure.message;
      }
    }
    if (!skipDbOnly) {
      progress('phase db-only: one Postgres round trip per attempt');
      try {
        dbOnly = await dbOnlyPhase(pool, o, id);
      } catch (err) {
        failure = err as Error;
        progress(`error: db-only phase: ${failure.message}`);
        result.dbOnlyError = failure.message;
      }
    }
  } catch (err) {
    failure = err as Error;
    result.error = failure.message;
    progress(`error: ${failure.message}`);
  } finally {
    killAllChildren();
    await pool.end().catch(() => undefined);
  }

  result.gate = gate;
  result.dbOnly = dbOnly;
  const ratio = gate && dbOnly && dbOnly.attemptsPerS > 0 ? +(gate.attemptsPerS / dbOnly.attemptsPerS).toFixed(2) : null;
  const refusalRatio = gate?.soldOutRefusalsPerS && dbOnly?.soldOutRefusalsPerS ? +(gate.soldOutRefusalsPerS / dbOnly.soldOutRefusalsPerS).toFixed(2) : null;
  result.ratio = { attemptsPerS: ratio, soldOutRefusalsPerS: refusalRatio };
  result.goals = {
    httpPathVsDbOnly: { goal: GOAL_RATIO, measured: ratio, met: ratio !== null && ratio >= GOAL_RATIO },
    soldOutRefusalsPerS: { goal: GOAL_SOLD_OUT_PER_S, measured: gate?.soldOutRefusalsPerS ?? null, met: (gate?.soldOutRefusalsPerS ?? 0) >= GOAL_SOLD_OUT_PER_S },
  };
  const correct = phaseOk(gate) && phaseOk(dbOnly);
  result.correct = correct;

  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (result.error) process.stdout.write(`flash sale: failed: ${String(result.error)}\n`);
  else {
    const lines = [`flash sale: ${o.attempts.toLocaleString('en-US')} attempts, ${o.units} units, ${o.clients} connections, qty 1, ${o.customers.toLocaleString('en-US')} customers`];
    if (gate) lines.push(...describe(gate));
    else if (result.gateError) lines.push(`gateway: failed: ${String(result.gateError)}`);
    if (dbOnly) lines.push(...describe(dbOnly));
    else if (result.dbOnlyError) lines.push(`db-only: failed: ${String(result.dbOnlyError)}`);
    if (ratio !== null) lines.push(`gateway / db-only: attempts/s ${ratio}x${refusalRatio === null ? '' : `, sold-out refusals/s ${refusalRatio}x`}`);
    const g = result.goals as { httpPathVsDbOnly: { met: boolean }; soldOutRefusalsPerS: { met: boolean } };
    if (ratio !== null) lines.push(`goal: full HTTP path >= ${GOAL_RATIO}x DB-only attempts/s: ${ratio}x, ${g.httpPathVsDbOnly.met ? 'met' : 'MISSED'}`);
    if (gate) lines.push(`goal: sold-out refusals >= ${GOAL_SOLD_OUT_PER_S.toLocaleString('en-US')}/s: ${gate.soldOutRefusalsPerS?.toLocaleString('en-US') ?? '-'}/s, ${g.soldOutRefusalsPerS.met ? 'met' : 'MISSED'}`);
    lines.push(`correctness (oversell 0, undersell 0, Postgres = 201s${gate ? ', every order on orders.events' : ''}): ${correct ? 'ok' : 'FAILED'}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  process.exit(failure || !correct ? 1 : 0);
}

await main();
