/**
 * Benchmark: WebSocket fan-out to many concurrent subscribers on loopback, side by side with a
 * naive broadcast server, in one run.
 *
 * Phase "gateway": the real gateway (`node --import tsx gateway/main.ts`) as a child process on a
 * unique REDIS_PREFIX. Phase "naive": tools/bench/naive-broadcast-server.ts (one JSON.stringify + one
 * ws.send per entry per subscribed client) on the same feed key. In each phase a separate load
 * client process (tools/bench/ws-load-client.ts) opens --clients connections in batches, each
 * subscribed to the same --skus SKUs; once all are subscribed, this process XADDs synthetic
 * entries to `<prefix>:feed` at --rate entries/s, round-robin over the SKUs with increasing
 * versions, for --seconds; then waits --drain seconds and collects the client's counts.
 * Several rate steps (`--rates`, default 50 and 200) run on the same connections, one after the
 * other; when the previous step's backlog has not drained after 5 s, the server and the load
 * client are restarted first, so that no step inherits another's backlog.
 *
 * Offered load = rate x subscribers item-deliveries/s. The gateway coalesces per SKU and
 * connection over a tick, so a delta superseded inside one tick is never sent: delivered can be
 * below offered by design (it is not a loss: the newer state is sent instead).
 *
 * Latencies, taken in the load client: frame = receipt - the frame's `rts` (when the server read
 * the oldest entry in it from Redis), item = receipt - the item's `commitTs` (this benchmark writes
 * the XADD time there: feed write -> receipt, 1 frame in 20 sampled).
 *
 * Usage: npm run bench:ws-fanout -- [--clients 10000] [--skus 100] [--rate 200 | --rates 50,200 (default)]
 *          [--seconds 20] [--drain 2] [--tick 25] [--batch 500] [--skip-naive] [--cpu-prof] [--json]
 *
 * The module also exports the load-client driver and the view seeding used by
 * tools/bench/ws-idle-memory.ts; the child-process helpers live in tools/bench/lib/children.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { RedisClient } from '../../lib/redis.ts';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createRedis } from '../../lib/redis.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import { encodeRow } from '../../stream-processors/domain/fold.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, spawnNode, startGateway, stopChild, type Child } from './lib/children.ts';
import { machineCpu, procStats } from './lib/cpu.ts';
import { freePort, scrapeMetrics, waitHttp } from './lib/http.ts';
import { deletePrefix } from './lib/redis-keys.ts';
import { progress, runId } from './lib/run.ts';
import type { LatencySummary } from './lib/stats.ts';

// ---------------------------------------------------------------------------------------------
// the load client process

export type LoadReport = {
  type: 'report';
  id: unknown;
  at: number;
  open: number;
  subscribed: number;
  frames: number;
  items: number;
  bytes: number;
  otherFrames: number;
  closes: Record<string, number>;
  errors: number;
  perConnectionItems: { min: number; max: number; connectionsWithNone: number };
  frameLatencyMs: LatencySummary;
  itemLatencyMs: LatencySummary;
  maxVersion: number;
  serverErrors: number;
  errorsTotal: number;
  closesTotal: Record<string, number>;
};
export type ReadyMessage = { type: 'ready'; connected: number; subscribed: number; attempted: number; rampMs: number; closes: Record<string, number>; errors: number };

export class LoadClientProcess {
  readonly child: Child;
  private readonly waiters = new Map<string, (msg: Record<string, unknown>) => void>();
  private ready: Promise<ReadyMessage>;
  private nextId = 0;

  constructor(port: number, args: string[]) {
    let resolveReady!: (m: ReadyMessage) => void;
    this.ready = new Promise((r) => (resolveReady = r));
    this.child = spawnNode('load-client', 'tools/bench/ws-load-client.ts', ['--port', String(port), ...args], {
      stdin: true,
      onStdoutLine: (line) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          progress(`  [load-client] ${line}`);
          return;
        }
        if (msg.type === 'ready') resolveReady(msg as unknown as ReadyMessage);
        else {
          const w = this.waiters.get(`${String(msg.type)}:${String(msg.id)}`);
          w?.(msg);
        }
      },
    });
  }

  async waitReady(timeoutMs: number): Promise<ReadyMessage> {
    const r = await Promise.race([
      this.ready,
      this.child.exited.then((c) => {
        throw new Error(`load client exited (${String(c)}) before it was ready`);
      }),
      sleep(timeoutMs).then(() => {
        throw new Error(`load client not ready within ${timeoutMs} ms`);
      }),
    ]);
    return r;
  }

  private async request<T>(cmd: string, type: string): Promise<T> {
    const id = ++this.nextId;
    const answer = new Promise<T>((resolve) => this.waiters.set(`${type}:${id}`, (m) => resolve(m as T)));
    this.child.proc.stdin!.write(`${JSON.stringify({ cmd, id })}\n`);
    const timeout = sleep(30_000).then(() => {
      throw new Error(`load client did not answer ${cmd} within 30 s`);
    });
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      this.waiters.delete(`${type}:${id}`);
    }
  }

  reset(): Promise<{ at: number }> {
    return this.request('reset', 'reset');
  }

  report(): Promise<LoadReport> {
    return this.request('report', 'report');
  }

  async stop(): Promise<void> {
    if (!this.child.alive()) return;
    try {
      this.child.proc.stdin!.write(`${JSON.stringify({ cmd: 'exit' })}\n`);
      this.child.proc.stdin!.end();
    } catch {
      // gone
    }
    const exited = await Promise.race([this.child.exited.then(() => true), sleep(5000).then(() => false)]);
    if (!exited) await stopChild(this.child, 2000);
  }
}

// ---------------------------------------------------------------------------------------------
// the benchmark

export const fanoutSku = (i: number): string => `BENCHWS-${String(i + 1).padStart(5, '0')}`;

/** Gives the SKUs a view (one row at WH-1, version 1), so a subscribe answers with a snapshot of them. */
export async function seedViews(redis: RedisClient, prefix: string, skus: string[], commitTs = Date.now()): Promise<void> {
  const keys = redisKeys(prefix);
  const p = redis.pipeline();
  for (const sku of skus) p.hset(keys.rows(sku), 'WH-1', encodeRow({ onHand: 100, reserved: 0, safetyStock: 0, version: 1, deleted: false, commitTs }));
  await p.exec();
}

interface Step {
  server: 'gateway' | 'naive';
  rate: number;
  seconds: number;
  subscribers: number;
  /** The server and clients were restarted before this step because the previous step's backlog did not drain. */
  restartedBefore: boolean;
  entriesWritten: number;
  offeredItemsPerS: number;
  offeredItems: number;
  /** Received by the client while the load ran (the sustained rate). */
  deliveredItemsPerS: number;
  framesPerS: number;
  itemsPerFrame: number;
  /** Received by the end of the drain wait. */
  deliveredItemsTotal: number;
  deliveredShareOfOffered: number;
  frameLatencyMs: LatencySummary;
  itemLatencyMs: LatencySummary;
  /**
   * Whether the clients had the newest written version by the end of the drain wait. When they
   * had, items missing from `delivered` were superseded (coalesced); when not, the server was
   * still `entriesBehindAtEnd` entries behind the feed (backlog, not coalescing).
   */
  caughtUp: boolean;
  entriesBehindAtEnd: number;
  perConnectionItems: LoadReport['perConnectionItems'];
  open: number;
  closes: Record<string, number>;
  errors: number;
  /** CPU cores used during the load: the server process, the load client, the whole machine, and the rest (RedisClient, the stack's JVMs, other users). */
  cpu: { serverCores: number; clientCores: number; machineBusyCores: number; otherCores: number };
  serverRssMiB: number | undefined;
  gatewayCounters?: Record<string, number>;
}

interface PhaseResult {
  server: 'gateway' | 'naive';
  reached: ReadyMessage;
  steps: Step[];
  error?: string;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const clients = Math.round(args.get('clients', 10_000));
  const skus = Math.round(args.get('skus', 100));
  const seconds = args.get('seconds', 20);
  const drain = args.get('drain', 2);
  const batch = Math.round(args.get('batch', 500));
  const tick = args.has('tick') ? Math.round(args.get('tick', 25)) : undefined;
  const ratesArg = argv.indexOf('--rates') >= 0 ? argv[argv.indexOf('--rates') + 1] : undefined;
  // Default: two steps, 50 entries/s (offered 500,000 item-deliveries/s at 10,000 subscribers: the
  // goal's level) and 200 (4x the goal). `--rate R` runs one step, `--rates a,b,c` several.
  const rates = ratesArg ? ratesArg.split(',').map(Number) : args.has('rate') ? [args.get('rate', 200)] : [50, 200];
  if (rates.some((r) => !Number.isFinite(r) || r <= 0)) {
    progress('error: --rates needs a comma-separated list of positive numbers');
    process.exit(2);
  }
  const skipNaive = args.has('skip-naive');
  const skipGateway = args.has('skip-gateway');
  const cpuProf = args.has('cpu-prof');
  const hardLimitS = args.get('max-seconds', 900);

  const config = loadConfigOrExit();
  const id = runId();
  const prefix = `bwsf-${id}`;
  const feedKey = redisKeys(prefix).feed;
  const skuList = Array.from({ length: skus }, (_, i) => fanoutSku(i));
  const redis = createRedis(config.redis);
  const profDir = cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), 'ws-fanout-prof-')) : undefined;
  const phases: PhaseResult[] = [];
  let version = 1;
  let failure: Error | undefined;

  installHardLimit(hardLimitS * 1000, `error: --max-seconds ${hardLimitS} reached; killing children`, ['SIGINT', 'SIGTERM']);

  /** XADDs entries at `rate`/s for `seconds`; returns how many were written. */
  async function drive(rate: number, secs: number): Promise<number> {
    const total = Math.round(rate * secs);
    const started = Date.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate));
      if (due > sent) {
        const p = redis.pipeline();
        const now = Date.now();
        for (; sent < due; sent++) {
          const i = sent % skus;
          if (i === 0) version++;
          const available = 50 + (sent % 50);
          p.xadd(feedKey, 'MAXLEN', '~', 100_000, '*',
            'sku', skuList[i]!, 'available', available, 'onHand', available, 'reserved', 0, 'safetyStock', 0,
            'version', version, 'deleted', 0, 'commitTs', now,
            'locations', `[{"locationId":"WH-1","onHand":${available},"reserved":0,"safetyStock":0,"available":${available},"version":${version}}]`);
        }
        await p.exec();
      }
      await sleep(5);
    }
    return sent;
  }

  interface Running {
    srv: Child;
    url: string;
    lc: LoadClientProcess;
    reached: ReadyMessage;
  }

  /** Starts the server of a phase and a load client connected to it (every client subscribed). */
  async function startRunning(server: 'gateway' | 'naive', holder: { srv?: Child; lc?: LoadClientProcess }): Promise<Running> {
    let url: string;
    let port: number;
    if (server === 'gateway') {
      const g = await startGateway({ prefix, ...(tick === undefined ? {} : { tickMs: tick }), ...(profDir ? { cpuProfDir: profDir } : {}) });
      holder.srv = g.child;
      url = g.url;
      port = g.port;
    } else {
      port = await freePort();
      holder.srv = spawnNode('naive', 'tools/bench/naive-broadcast-server.ts', ['--port', String(port), '--key', feedKey, '--redis-url', config.redis.url, '--max-seconds', String(hardLimitS)]);
      url = `http://127.0.0.1:${port}`;
      await waitHttp(`${url}/readyz`, 30_000, holder.srv);
    }
    const srv = holder.srv;
    progress(`${server}: listening on ${port} (pid ${srv.pid}); connecting ${clients} clients x ${skus} SKUs`);
    holder.lc = new LoadClientProcess(port, ['--clients', String(clients), '--skus', String(skus), '--sku-prefix', 'BENCHWS-', '--batch', String(batch), '--max-seconds', String(hardLimitS)]);
    const reached = await holder.lc.waitReady(300_000);
    progress(`${server}: ${reached.connected} connected, ${reached.subscribed} subscribed in ${(reached.rampMs / 1000).toFixed(1)} s`);
    await sleep(1000);
    return { srv, url, lc: holder.lc, reached };
  }

  async function stopRunning(holder: { srv?: Child; lc?: LoadClientProcess }): Promise<void> {
    await holder.lc?.stop();
    await stopChild(holder.srv, 15_000);
    holder.lc = undefined;
    holder.srv = undefined;
  }

  /** True when nothing arrived at the client for 1 s, checked for at most `maxMs`. */
  async function quiet(lc: LoadClientProcess, maxMs: number): Promise<boolean> {
    const until = Date.now() + maxMs;
    let last = (await lc.report()).items;
    while (Date.now() < until) {
      await sleep(1000);
      const now = (await lc.report()).items;
      if (now === last) return true;
      last = now;
    }
    return false;
  }

  async function runPhase(server: 'gateway' | 'naive'): Promise<PhaseResult> {
    const holder: { srv?: Child; lc?: LoadClientProcess } = {};
    const steps: Step[] = [];
    let reached: ReadyMessage = { type: 'ready', connected: 0, subscribed: 0, attempted: clients, rampMs: 0, closes: {}, errors: 0 };
    try {
      let run = await startRunning(server, holder);
      reached = run.reached;
      for (const [k, rate] of rates.entries()) {
        let restarted = false;
        // A backlog left by the previous step would leak into this one: restart when it does not drain.
        if (k > 0 && !(await quiet(run.lc, 5000))) {
          progress(`${server}: still delivering the previous step's backlog; restarting ${server} and the load client`);
          await stopRunning(holder);
          run = await startRunning(server, holder);
          restarted = true;
        }
        const { srv, url, lc } = run;
        const before = server === 'gateway' ? await scrapeMetrics(`${url}/metrics`, ['invsync_gateway_items_sent_total', 'invsync_gateway_frames_sent_total', 'invsync_gateway_feed_entries_total']).catch(() => undefined) : undefined;
        await lc.reset();
        const s0 = procStats(srv.pid);
        const c0 = procStats(lc.child.pid);
        const m0 = machineCpu();
        const t0 = Date.now();
        progress(`${server}: ${rate} entries/s for ${seconds} s (offered ${(rate * run.reached.subscribed).toLocaleString('en-US')} item-deliveries/s)`);
        const written = await drive(rate, seconds);
        const t1 = Date.now();
        const atLoadEnd = await lc.report();
        const s1 = procStats(srv.pid);
        const c1 = procStats(lc.child.pid);
        const m1 = machineCpu();
        await sleep(drain * 1000);
        const final = await lc.report();
        const after = before ? await scrapeMetrics(`${url}/metrics`, Object.keys(before), 3000).catch(() => undefined) : undefined;
        const loadS = (t1 - t0) / 1000;
        const offered = written * run.reached.subscribed;
        const serverCores = s0 && s1 ? +((s1.cpuS - s0.cpuS) / loadS).toFixed(2) : Number.NaN;
        const clientCores = c0 && c1 ? +((c1.cpuS - c0.cpuS) / loadS).toFixed(2) : Number.NaN;
        const machineBusyCores = +((m1.busyS - m0.busyS) / loadS).toFixed(2);
        const step: Step = {
          server,
          rate,
          seconds,
          subscribers: run.reached.subscribed,
          restartedBefore: restarted,
          entriesWritten: written,
          offeredItemsPerS: Math.round(offered / loadS),
          offeredItems: offered,
          deliveredItemsPerS: Math.round(atLoadEnd.items / loadS),
          framesPerS: Math.round(atLoadEnd.frames / loadS),
          itemsPerFrame: final.frames ? +(final.items / final.frames).toFixed(2) : 0,
          deliveredItemsTotal: final.items,
          deliveredShareOfOffered: offered ? +(final.items / offered).toFixed(4) : 0,
          frameLatencyMs: final.frameLatencyMs,
          itemLatencyMs: final.itemLatencyMs,
          caughtUp: final.maxVersion >= version,
          entriesBehindAtEnd: Math.max(0, (version - final.maxVersion) * skus),
          perConnectionItems: final.perConnectionItems,
          open: final.open,
          closes: final.closes,
          errors: final.errors,
          cpu: { serverCores, clientCores, machineBusyCores, otherCores: +(machineBusyCores - serverCores - clientCores).toFixed(2) },
          serverRssMiB: s1 ? Math.round(s1.rssBytes / 2 ** 20) : undefined,
          ...(before && after ? { gatewayCounters: Object.fromEntries(Object.keys(before).map((key) => [key, (after[key] ?? 0) - (before[key] ?? 0)])) } : {}),
        };
        steps.push(step);
        progress(
          `${server} @ ${rate}/s: delivered ${step.deliveredItemsPerS.toLocaleString('en-US')} items/s (offered ${step.offeredItemsPerS.toLocaleString('en-US')}), ` +
            `${step.framesPerS.toLocaleString('en-US')} frames/s, ${step.itemsPerFrame} items/frame; frame latency p50 ${step.frameLatencyMs.p50} p99 ${step.frameLatencyMs.p99} max ${step.frameLatencyMs.max} ms; ` +
            `item (feed write -> receipt) p99 ${step.itemLatencyMs.p99} ms; ${step.caughtUp ? 'caught up' : `~${step.entriesBehindAtEnd} entries behind`} after the drain; open ${step.open}; cores: server ${serverCores}, client ${clientCores}, everything else ${step.cpu.otherCores}`,
        );
      }
      return { server, reached, steps };
    } catch (err) {
      progress(`${server}: error: ${(err as Error).message}`);
      return { server, reached, steps, error: (err as Error).message };
    } finally {
      await stopRunning(holder);
    }
  }

  try {
    progress(`ws-fanout: ${clients} clients x ${skus} SKUs, rates ${rates.join(', ')} entries/s, ${seconds} s each, prefix ${prefix}`);
    await seedViews(redis, prefix, skuList);
    if (!skipGateway) phases.push(await runPhase('gateway'));
    if (!skipNaive) phases.push(await runPhase('naive'));
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
  } finally {
    killAllChildren();
    try {
      const n = await deletePrefix(redis, prefix);
      progress(`cleaned up: ${n} Redis keys of ${prefix}`);
    } catch (err) {
      progress(`cleanup: could not delete ${prefix}:*: ${(err as Error).message}`);
    }
    redis.disconnect();
  }

  const ours = phases.find((p) => p.server === 'gateway');
  const naive = phases.find((p) => p.server === 'naive');
  const comparison = rates.map((rate) => {
    const a = ours?.steps.find((s) => s.rate === rate);
    const b = naive?.steps.find((s) => s.rate === rate);
    return {
      rate,
      oursDeliveredPerS: a?.deliveredItemsPerS ?? null,
      naiveDeliveredPerS: b?.deliveredItemsPerS ?? null,
      ratioDelivered: a && b && b.deliveredItemsPerS ? +(a.deliveredItemsPerS / b.deliveredItemsPerS).toFixed(2) : null,
      oursFrameP99: a?.frameLatencyMs.p99 ?? null,
      naiveFrameP99: b?.frameLatencyMs.p99 ?? null,
    };
  });
  const best = ours?.steps.filter((s) => s.subscribers >= 10_000);
  const goals = {
    deliveredPerS: { goal: 500_000, atSubscribers: 10_000, met: Boolean(best?.some((s) => s.deliveredItemsPerS >= 500_000 && (s.frameLatencyMs.p99 ?? Infinity) <= 100)) },
    p99Ms: { goal: 100 },
  };
  const result = {
    benchmark: 'ws-fanout',
    machine: machine(),
    clients,
    skus,
    rates,
    seconds,
    drain,
    tickMs: tick ?? 'gateway default (25)',
    phases,
    comparison,
    goals,
    ...(profDir ? { cpuProfiles: profDir } : {}),
    ...(failure ? { error: failure.message } : {}),
  };
  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    for (const c of comparison) {
      process.stdout.write(
        `rate ${c.rate}/s: ours ${c.oursDeliveredPerS?.toLocaleString('en-US') ?? '-'} items/s (p99 ${c.oursFrameP99} ms), naive ${c.naiveDeliveredPerS?.toLocaleString('en-US') ?? '-'} items/s (p99 ${c.naiveFrameP99} ms), ratio ${c.ratioDelivered ?? '-'}\n`,
      );
    }
    process.stdout.write(`goal >= 500,000 delivered/s at 10,000 subscribers with p99 <= 100 ms: ${goals.deliveredPerS.met ? 'met' : 'MISSED'}\n`);
    if (profDir) process.stdout.write(`gateway CPU profile in ${profDir}\n`);
  }
  process.exit(failure || phases.some((p) => p.error) ? 1 : 0);
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) await main();
