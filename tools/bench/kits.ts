/**
 * Benchmark: kit purchase attempts per second beside single-SKU attempts (issue 14, "Measure"),
 * in one run, through one gateway (docs/kits.md).
 *
 * Set-up: a single SKU with nothing to sell, and a kit of 3 components (quantities 1, 2, 1) whose
 * first two components have 1,000 units and whose last has none: every attempt is refused by the
 * gate (409 sold_out), the flash-sale case where a kit sells out because one component ran out.
 * The kit line is expanded into its 3 components in the gateway and the gate checks them in one
 * atomic call (gate-reserve.lua), the last one refusing, so a kit attempt costs the expansion plus
 * a 3-item gate call where a single attempt is a 1-item call.
 *
 * A stock processor child (tools/bench/lib/processor-child.ts) folds the rows into the views; a
 * gateway child (gateway/main.ts, rate limits off) takes the purchases from the load child
 * (tools/bench/flash-sale-load.ts): one warm-up of each, then --rounds rounds alternated (ABBA),
 * single then kit or kit then single; the median of the per-round ratios (kit / single). Beside
 * the rates, the CPU each answered attempt cost the gateway and Redis (from /proc, native stack):
 * on a shared, busy machine the rates move with everyone else's load, the CPU per attempt much less.
 *
 * Bounded: a hard limit of 4 minutes kills every child. Loopback only. Everything it creates is
 * removed at the end, also on failure: kits, products, SKUs' rows, the Redis prefix, the group.
 *
 * Usage: npm run bench:kits -- [--rounds 3] [--attempts 50000] [--run-seconds 4] [--clients 400] [--json]
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerStockSchemas } from '../../lib/avro-registry.ts';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createPgPool } from '../../lib/pg.ts';
import { cleanUp } from '../../tests/helpers.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, spawnNode, startGateway, stopChild, type Child } from './lib/children.ts';
import { livePid } from '../stack/proc.ts';
import { procStats } from './lib/cpu.ts';
import { runLoadChild, type LoadChildOptions } from './lib/load-child.ts';
import { median } from './lib/receipts.ts';
import { progress, runId } from './lib/run.ts';

function spawnProcessor(prefix: string, group: string, probe: string): { child: Child; ready: Promise<void> } {
  let resolve!: () => void;
  const ready = new Promise<void>((r) => (resolve = r));
  const child = spawnNode('processor', 'tools/bench/lib/processor-child.ts', ['--prefix', prefix, '--group', group, '--probe', probe], {
    stdin: true,
    onStdoutLine: (line) => {
      if (line.includes('"ready"')) resolve();
      else progress(`  [processor] ${line}`);
    },
  });
  return {
    child,
    ready: Promise.race([
      ready,
      child.exited.then((c) => {
        throw new Error(`the processor exited (${String(c)}) before it was live`);
      }),
    ]),
  };
}

async function stopProcessor(child: Child | undefined): Promise<void> {
  if (!child?.alive()) return;
  child.proc.stdin?.end();
  const done = await Promise.race([child.exited.then(() => true), sleep(20_000).then(() => false)]);
  if (!done) await stopChild(child, 5000);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rounds = Math.round(args.get('rounds', 3));
  const load: LoadChildOptions = { attempts: Math.round(args.get('attempts', 50_000)), clients: Math.round(args.get('clients', 400)), customers: 100_000, maxSeconds: args.get('run-seconds', 4) };
  const config = loadConfigOrExit();
  const id = runId();
  const skuPrefix = `BKT-${id}-`;
  const single = `${skuPrefix}SINGLE`;
  const kit = `${skuPrefix}KIT`;
  const components = [
    { sku: `${skuPrefix}C1`, qty: 1, onHand: 1000 },
    { sku: `${skuPrefix}C2`, qty: 2, onHand: 1000 },
    { sku: `${skuPrefix}C3`, qty: 1, onHand: 0 },
  ];
  const prefix = `bkt-${id}`;
  const group = `bench-kits-${id}`;
  const pool = createPgPool(config.pg.url, { max: 2, application: 'invsync-bench-kits' });
  const result: Record<string, unknown> = { benchmark: 'kits', machine: machine(), loadAverageStart: os.loadavg().map((x) => +x.toFixed(2)), components: components.map(({ sku, qty, onHand }) => ({ sku, qty, onHand })), attemptsPerRun: load.attempts, clients: load.clients };
  const children: Child[] = [];
  let processor: Child | undefined;
  let failure: Error | undefined;
  installHardLimit(240_000, 'error: 4 minutes elapsed; killing children');
  try {
    progress(`kits: sold-out attempts/s, a kit of ${components.length} components (the last sold out) beside a single SKU; ${rounds} rounds (run ${id})`);
    const products = [single, kit, ...components.map((c) => c.sku)];
    await pool.query(`INSERT INTO products (sku, name) SELECT s, 'bench kits' FROM unnest($1::text[]) AS s`, [products]);
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT s, 'WH-1', q FROM unnest($1::text[], $2::int[]) AS t(s, q)`, [
      [single, ...components.map((c) => c.sku)],
      [0, ...components.map((c) => c.onHand)],
    ]);
    await pool.query('INSERT INTO kits (sku, name) VALUES ($1, $2)', [kit, 'bench kit']);
    await pool.query('INSERT INTO kit_components (kit_sku, component_sku, quantity) SELECT $1, c, q FROM unnest($2::text[], $3::int[]) AS t(c, q)', [kit, components.map((c) => c.sku), components.map((c) => c.qty)]);

    await registerStockSchemas(config.registry.url);
    const proc = spawnProcessor(prefix, group, `${skuPrefix}PROBE`);
    processor = proc.child;
    const gw = await startGateway({ prefix, env: { PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0', PURCHASE_MAX_PER_CUSTOMER: '0' } });
    children.push(gw.child);
    await proc.ready;
    // The rows were inserted before the processor read the topic: touch them so it folds them.
    const readyBy = Date.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      if (attempt % 10 === 0) await pool.query('UPDATE stock_levels SET on_hand = on_hand WHERE sku = ANY($1::text[])', [[single, ...components.map((c) => c.sku)]]);
      const res = await fetch(`${gw.url}/v1/stock?skus=${[single, kit, ...components.map((c) => c.sku)].map(encodeURIComponent).join(',')}`);
      const body = (await res.json()) as { items: Array<{ sku: string; kit?: unknown }>; unknown: string[] };
      if (body.unknown.length === 0 && body.items.some((i) => i.sku === kit && i.kit)) break;
      if (Date.now() > readyBy) throw new Error(`the views or the kit catalog are not ready after 60 s (unknown: ${body.unknown.join(', ')})`);
      await sleep(250);
    }
    progress(`  processor and gateway (${gw.url}) ready`);

    // CPU seconds of the gateway and of Redis (native stack only; else null) around each run.
    const redisPid = livePid(config.stack.dir, 'redis');
    const cpu = () => ({ gateway: procStats(gw.child.pid)?.cpuS ?? Number.NaN, redis: redisPid === undefined ? Number.NaN : (procStats(redisPid)?.cpuS ?? Number.NaN) });
    const perAttemptUs = (a: number, b: number, n: number) => (Number.isFinite(b - a) && n > 0 ? Math.round(((b - a) * 1e6) / n) : null);
    const run = async (sku: string, attempts = load.attempts) => {
      const c0 = cpu();
      const s = await runLoadChild(gw.port, sku, { ...load, attempts });
      const c1 = cpu();
      return { ...s, cpuUs: { gateway: perAttemptUs(c0.gateway, c1.gateway, s.completed), redis: perAttemptUs(c0.redis, c1.redis, s.completed) } };
    };
    for (const [name, sku] of [['single', single], ['kit', kit]] as const) {
      const w = await run(sku, Math.max(1000, Math.round(load.attempts / 4)));
      progress(`  warm-up (${name}): ${w.attemptsPerS}/s, ${JSON.stringify(w.counts)}`);
    }
    type Cpu = { gateway: number | null; redis: number | null };
    const perRound: Array<{ single: number; kit: number; ratio: number; order: string; p99Ms: { single: number | null; kit: number | null }; cpuUsPerAttempt: { single: Cpu; kit: Cpu } }> = [];
    let notSoldOut = 0;
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['single', 'kit'] as const) : (['kit', 'single'] as const);
      const got: Record<string, { perS: number; p99: number | null; cpu: Cpu }> = {};
      for (const mode of order) {
        const s = await run(mode === 'kit' ? kit : single);
        notSoldOut += s.completed - s.soldOut;
        got[mode] = { perS: s.attemptsPerS, p99: s.latencyMs.all.p99, cpu: s.cpuUs };
        progress(`  round ${r + 1} ${mode}: ${s.attemptsPerS} attempts/s (${s.soldOut}/${s.completed} sold_out, p99 ${s.latencyMs.all.p99} ms); CPU per attempt: gateway ${s.cpuUs.gateway} µs, redis ${s.cpuUs.redis} µs`);
      }
      perRound.push({ single: got.single!.perS, kit: got.kit!.perS, ratio: +(got.kit!.perS / got.single!.perS).toFixed(3), order: order.join(','), p99Ms: { single: got.single!.p99, kit: got.kit!.p99 }, cpuUsPerAttempt: { single: got.single!.cpu, kit: got.kit!.cpu } });
    }
    result.rounds = perRound;
    /** Answers other than 409 sold_out in the measured rounds (must be 0: every attempt is a gate refusal). */
    result.notSoldOut = notSoldOut;
    result.medianAttemptsPerS = { single: median(perRound.map((x) => x.single)), kit: median(perRound.map((x) => x.kit)) };
    result.medianRatio = median(perRound.map((x) => x.ratio));
    const med = (f: (x: (typeof perRound)[number]) => number | null) => {
      const xs = perRound.map(f).filter((x): x is number => x !== null);
      return xs.length > 0 ? median(xs) : null;
    };
    result.medianCpuUsPerAttempt = {
      single: { gateway: med((x) => x.cpuUsPerAttempt.single.gateway), redis: med((x) => x.cpuUsPerAttempt.single.redis) },
      kit: { gateway: med((x) => x.cpuUsPerAttempt.kit.gateway), redis: med((x) => x.cpuUsPerAttempt.kit.redis) },
    };
    result.loadAverage = os.loadavg().map((x) => +x.toFixed(2));
    if (notSoldOut > 0) throw new Error(`${notSoldOut} attempts were answered otherwise than 409 sold_out`);
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
    result.error = failure.message;
  } finally {
    progress('  cleaning up: gateway, processor, kit, products, rows, Redis prefix');
    for (const c of children) await stopChild(c, 10_000);
    await stopProcessor(processor);
    killAllChildren();
    await pool.query('DELETE FROM kits WHERE sku = $1', [kit]).catch((err: Error) => progress(`  cleanup: ${err.message}`));
    await cleanUp(config, { redisPrefixes: [prefix], skuPrefixes: [skuPrefix], groups: [group] }).catch((err: Error) => progress(`  cleanup: ${err.message}`));
    await pool.query('DELETE FROM products WHERE sku LIKE $1', [`${skuPrefix}%`]).catch((err: Error) => progress(`  cleanup: ${err.message}`));
    await pool.end().catch(() => undefined);
  }

  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (result.medianRatio !== undefined) {
    const m = result.medianAttemptsPerS as { single: number; kit: number };
    process.stdout.write(
      [
        `kit vs single-SKU purchase attempts (all 409 sold_out), ${load.clients} clients, ${rounds} rounds:`,
        ...(result.rounds as Array<{ single: number; kit: number; ratio: number; order: string }>).map((x, i) => `  round ${i + 1} (${x.order}): single ${x.single}/s, kit ${x.kit}/s, ratio ${x.ratio}`),
        `  median: single ${m.single}/s, kit ${m.kit}/s, median ratio ${String(result.medianRatio)}`,
        `  median CPU per attempt (µs): ${JSON.stringify(result.medianCpuUsPerAttempt)}; load average ${JSON.stringify(result.loadAverage)}`,
      ].join('\n') + '\n',
    );
  } else process.stdout.write(`kits benchmark: failed: ${failure?.message ?? 'unknown'}\n`);
  process.exit(failure ? 1 : 0);
}

await main();
