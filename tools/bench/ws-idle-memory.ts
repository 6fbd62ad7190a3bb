/**
 * Benchmark: gateway memory per idle WebSocket connection.
 *
 * A gateway child process (`node --import tsx gateway/main.ts`, unique REDIS_PREFIX, free port)
 * is measured before and after a separate load-client process (tools/bench/ws-load-client.ts) opens
 * --clients idle connections, each subscribed to --skus SKUs (default 10; spread: connection i
 * gets SKUs i*10 .. i*10+9 of --sku-space, so every SKU has clients/sku-space*skus subscribers).
 * The SKUs have views (seeded on the benchmark's prefix), so each subscribe is answered with a
 * real snapshot and the connection holds per-SKU state, as in production.
 *
 * Measured in the gateway process: RSS (/proc/<pid>/status VmRSS) and the V8 heap
 * (invsync_gateway_nodejs_heap_size_used_bytes from GET /metrics, plus external memory). Before
 * each reading a full GC is forced through the inspector protocol (the gateway child is started
 * with --inspect=127.0.0.1:0; loopback only), and the median of 3 readings is kept, so that the
 * heap figure is live data rather than garbage. Reported: (after - before) / clients.
 *
 * Usage: npm run bench:ws-idle-memory -- [--clients 10000] [--skus 10] [--sku-space 10000]
 *          [--batch 500] [--settle 5] [--no-gc] [--json]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createRedis } from '../../lib/redis.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, startGateway, stopChild, type Child } from './lib/children.ts';
import { procStats } from './lib/cpu.ts';
import { scrapeMetrics } from './lib/http.ts';
import { deletePrefix } from './lib/redis-keys.ts';
import { progress, runId } from './lib/run.ts';
import { fanoutSku, LoadClientProcess, seedViews } from './ws-fanout.ts';

const args = parseArgs(process.argv.slice(2));
const clients = Math.round(args.get('clients', 10_000));
const skus = Math.round(args.get('skus', 10));
const skuSpace = Math.round(args.get('sku-space', 10_000));
const batch = Math.round(args.get('batch', 500));
const settleS = args.get('settle', 5);
const forceGc = !args.has('no-gc');
const config = loadConfigOrExit();
const prefix = `bwsm-${runId()}`;
const redis = createRedis(config.redis);

interface Reading {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
}

/** Forces a full GC in the gateway through its inspector (HeapProfiler.collectGarbage). */
async function collectGarbage(inspectorUrl: string): Promise<void> {
  const ws = new WebSocket(inspectorUrl);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('inspector did not answer collectGarbage within 30 s')), 30_000);
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data)) as { id?: number };
        if (msg.id === 1) {
          clearTimeout(timer);
          resolve();
        }
      });
      ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    });
  } finally {
    ws.terminate();
  }
}

async function reading(child: Child, metricsUrl: string, inspectorUrl: string | undefined): Promise<Reading> {
  const samples: Reading[] = [];
  for (let i = 0; i < 3; i++) {
    if (inspectorUrl) await collectGarbage(inspectorUrl);
    await sleep(300);
    const m = await scrapeMetrics(metricsUrl, ['invsync_gateway_nodejs_heap_size_used_bytes', 'invsync_gateway_nodejs_external_memory_bytes']);
    const p = procStats(child.pid);
    if (!p) throw new Error('gateway process is gone');
    samples.push({
      rssBytes: p.rssBytes,
      heapUsedBytes: m.invsync_gateway_nodejs_heap_size_used_bytes ?? Number.NaN,
      externalBytes: m.invsync_gateway_nodejs_external_memory_bytes ?? Number.NaN,
    });
    await sleep(700);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return {
    rssBytes: median(samples.map((s) => s.rssBytes)),
    heapUsedBytes: median(samples.map((s) => s.heapUsedBytes)),
    externalBytes: median(samples.map((s) => s.externalBytes)),
  };
}

const mib = (b: number) => +(b / 2 ** 20).toFixed(1);
let gateway: Child | undefined;
let lc: LoadClientProcess | undefined;
let failure: Error | undefined;
const result: Record<string, unknown> = { benchmark: 'ws-idle-memory', machine: machine(), clients, skusPerConnection: skus, skuSpace, forcedGc: forceGc };
installHardLimit(600_000, 'error: 10 minutes elapsed; killing children');

try {
  progress(`ws-idle-memory: ${clients} idle connections x ${skus} SKUs (of ${skuSpace}), prefix ${prefix}`);
  await seedViews(redis, prefix, Array.from({ length: skuSpace }, (_, i) => fanoutSku(i)));
  let inspectorUrl: string | undefined;
  const g = await startGateway({
    prefix,
    nodeFlags: forceGc ? ['--inspect=127.0.0.1:0'] : [],
    onStderrLine: (line) => {
      const m = /Debugger listening on (ws:\/\/\S+)/.exec(line);
      if (m) inspectorUrl = m[1];
      else if (!/^(For help, see|Debugger (attached|ending))/.test(line)) progress(`  [gateway] ${line}`);
    },
  });
  gateway = g.child;
  if (forceGc && !inspectorUrl) throw new Error('the gateway did not print its inspector URL');
  await sleep(2000);
  const before = await reading(gateway, `${g.url}/metrics`, inspectorUrl);
  progress(`  before: RSS ${mib(before.rssBytes)} MiB, heap used ${mib(before.heapUsedBytes)} MiB`);

  lc = new LoadClientProcess(g.port, ['--clients', String(clients), '--skus', String(skus), '--sku-mode', 'spread', '--sku-space', String(skuSpace), '--batch', String(batch), '--max-seconds', '600']);
  const ready = await lc.waitReady(300_000);
  progress(`  ${ready.connected} connected, ${ready.subscribed} subscribed in ${(ready.rampMs / 1000).toFixed(1)} s; settling ${settleS} s`);
  await sleep(settleS * 1000);
  const conns = (await scrapeMetrics(`${g.url}/metrics`, ['invsync_gateway_connections'])).invsync_gateway_connections ?? Number.NaN;
  const after = await reading(gateway, `${g.url}/metrics`, inspectorUrl);
  const peak = procStats(gateway.pid);
  const clientMem = procStats(lc.child.pid);
  const n = ready.subscribed;
  Object.assign(result, {
    connected: ready.connected,
    subscribed: ready.subscribed,
    gatewayConnections: conns,
    rampMs: ready.rampMs,
    before: { rssMiB: mib(before.rssBytes), heapUsedMiB: mib(before.heapUsedBytes), externalMiB: mib(before.externalBytes) },
    after: { rssMiB: mib(after.rssBytes), heapUsedMiB: mib(after.heapUsedBytes), externalMiB: mib(after.externalBytes) },
    gatewayPeakRssMiB: peak ? mib(peak.hwmBytes) : null,
    perConnection: {
      rssBytes: Math.round((after.rssBytes - before.rssBytes) / n),
      heapBytes: Math.round((after.heapUsedBytes - before.heapUsedBytes) / n),
      externalBytes: Math.round((after.externalBytes - before.externalBytes) / n),
    },
    loadClientRssMiB: clientMem ? mib(clientMem.rssBytes) : null,
  });
  const per = result.perConnection as { rssBytes: number; heapBytes: number };
  progress(`  after: RSS ${mib(after.rssBytes)} MiB, heap used ${mib(after.heapUsedBytes)} MiB -> per connection: RSS ${per.rssBytes} B, heap ${per.heapBytes} B`);
} catch (err) {
  failure = err as Error;
  progress(`error: ${failure.message}`);
  result.error = failure.message;
} finally {
  await lc?.stop();
  await stopChild(gateway, 15_000);
  killAllChildren();
  try {
    await deletePrefix(redis, prefix);
  } catch (err) {
    progress(`cleanup: could not delete ${prefix}:*: ${(err as Error).message}`);
  }
  redis.disconnect();
}

if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else if (!failure) {
  const per = result.perConnection as { rssBytes: number; heapBytes: number; externalBytes: number };
  process.stdout.write(
    `${String(result.subscribed)} idle connections x ${skus} SKUs: per connection RSS ${(per.rssBytes / 1024).toFixed(1)} KiB, V8 heap ${(per.heapBytes / 1024).toFixed(1)} KiB, external ${(per.externalBytes / 1024).toFixed(1)} KiB\n`,
  );
}
process.exit(failure ? 1 : 0);
