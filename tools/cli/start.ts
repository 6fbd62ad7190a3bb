/**
 * `npm start`: the main job. Brings the stack up (native by default, or checks the external
 * services when STACK=external), applies migrations, seeds the demo catalog, then runs the
 * platform's processes — the stock processor, the gateway and the connectors — as separate child
 * processes under a supervisor (lib/supervisor.ts): one that crashes is restarted with backoff
 * while the others keep serving, and a child that cannot start (a configuration error) is
 * reported once, not restarted forever. Prints a table of the children (pid, state, restarts,
 * crashes) and where to look, then tails the Redis views as the processor updates them.
 *
 * Ctrl-C / SIGTERM: forwarded to every child (each drains: docs/operations.md), SIGKILL after a
 * grace period, and this process exits only once all of them have; the stack keeps running
 * (`npm run stack -- down` stops it). Children's logs go to <stack dir>/logs/<name>.log; their
 * warnings and errors, and every crash and restart, are also printed here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigOrExit, PROJECT_ROOT } from '../../lib/config.ts';
import { errorMessage, PlatformError } from '../../lib/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { createPgPool } from '../../lib/pg.ts';
import { redactUrlsIn } from '../../lib/redact.ts';
import { createRedis } from '../../lib/redis.ts';
import { seedCatalog } from '../../lib/seed.ts';
import { renderChildTable, Supervisor, tsChild, type ChildStatus, type SupervisorEvent } from '../../lib/supervisor.ts';
import { renderStatus, stackUp } from '../stack/stack.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import { startFeedTail } from '../../stream-processors/feed-tail.ts';

let config = loadConfigOrExit();
// Every console line passes redaction: connection URLs may carry passwords (finding 12).
const say = (line: string) => process.stdout.write(`${redactUrlsIn(line)}\n`);
const logsDir = path.join(config.stack.dir, 'logs');
fs.mkdirSync(logsDir, { recursive: true });
const log = createLogger({ level: 'info', name: 'invsync-supervisor', file: path.join(logsDir, 'supervisor.log') });

/**
 * The children: the existing entry points, each its own process. The processor gets 32 MB
 * semi-spaces and the gateway 64 MB: their garbage is short-lived but made in bursts (a batch, a
 * flash sale), and larger young generations scavenge less often (docs/benchmarks.md: the fold
 * 1.17x, "Kafka client costs in the fold"; the gateway 6-17 % less CPU per sold-out attempt with
 * 64 than with 32, about 60 MB more peak RSS, "The purchase route's own costs").
 */
const CHILDREN = [
  tsChild('processor', path.join(PROJECT_ROOT, 'stream-processors', 'main.ts'), { cwd: PROJECT_ROOT, nodeArgs: ['--max-semi-space-size=32'] }),
  tsChild('gateway', path.join(PROJECT_ROOT, 'gateway', 'main.ts'), { cwd: PROJECT_ROOT, nodeArgs: ['--max-semi-space-size=64'] }),
  tsChild('connectors', path.join(PROJECT_ROOT, 'connectors', 'main.ts'), { cwd: PROJECT_ROOT }),
];

const LEVELS: Record<number, string> = { 40: 'warn', 50: 'error', 60: 'fatal' };

/** A child's output line: to its log file; warnings and worse (and non-JSON stderr) also to the console. */
function childOutput(files: Map<string, fs.WriteStream>) {
  return (name: string, stream: 'stdout' | 'stderr', line: string) => {
    files.get(name)?.write(`${line}\n`);
    let shown: string | undefined;
    try {
      const rec = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
      if (typeof rec.level === 'number' && rec.level >= 40) shown = `${LEVELS[rec.level] ?? rec.level}: ${rec.msg ?? ''}${rec.err ? ` (${String(rec.err)})` : ''}`;
    } catch {
      if (stream === 'stderr' && line.trim()) shown = line;
    }
    if (shown) say(`  [${name}] ${redactUrlsIn(shown)}`);
  };
}

function describe(c: ChildStatus): string {
  const i = c.info;
  if (c.name === 'gateway' && i.url) return `HTTP + WebSocket on ${String(i.url)}`;
  if (c.name === 'processor' && i.partitions) return `CDC partitions ${String(i.partitions)}${i.metricsPort ? `, metrics :${String(i.metricsPort)}` : ''}`;
  if (c.name === 'connectors' && i.partitions) return `stock.adjustments partitions ${String(i.partitions)}${i.metricsPort ? `, metrics :${String(i.metricsPort)}` : ''}`;
  return '';
}

function eventLine(e: SupervisorEvent): string | undefined {
  const c = e.child;
  switch (e.type) {
    case 'exited':
      return e.expected ? undefined : `${c.name} (pid ${e.pid ?? '?'}) exited: ${e.signal ? `signal ${e.signal}` : `code ${e.code}`} after ${(e.ranMs / 1000).toFixed(1)}s (crash ${c.crashes})`;
    case 'restart-scheduled':
      return `${c.name} restarting in ${(e.delayMs / 1000).toFixed(1)}s (restart ${c.restarts + 1})`;
    case 'failed':
      return `${c.name} FAILED and will not be restarted: ${e.reason}; its output is in ${path.join(logsDir, `${c.name}.log`)}`;
    default:
      return undefined;
  }
}

async function main(): Promise<void> {
  say(`invsync: starting the platform (${config.stack.mode} stack)`);
  const up = await stackUp(config, say);
  // The first `up` of a native stack generates its credentials: continue with the configuration that has them.
  config = up.config;
  const { status, seconds } = up;
  const pool = createPgPool(config.pg.url, { max: 2, application: 'invsync-start' });
  try {
    const { inserted } = await seedCatalog(pool, config.seed);
    say(`  seed      demo catalog ${config.seed.skus} SKUs x ${config.seed.locations} locations (${inserted} new rows)`);
  } finally {
    await pool.end();
  }

  const files = new Map(CHILDREN.map((c) => [c.name, fs.createWriteStream(path.join(logsDir, `${c.name}.log`), { flags: 'a' })]));
  const l = config.lifecycle;
  const supervisor = new Supervisor({
    children: CHILDREN,
    backoff: config.supervisor.backoff,
    maxStartFailures: config.supervisor.maxStartFailures,
    // A child drains within its own bound (readiness delay + drain timeout + 5 s); a little more here.
    graceMs: l.readinessDelayMs + l.drainTimeoutMs + 7000,
    onOutput: childOutput(files),
  });
  let started = false;
  supervisor.on('event', (e) => {
    const { info: _info, ...child } = e.child;
    log.info({ event: e.type, ...child, ...('code' in e ? { code: e.code, signal: e.signal, ranMs: e.ranMs, expected: e.expected } : {}), ...('delayMs' in e ? { delayMs: e.delayMs } : {}) }, `child ${e.type}`);
    const line = eventLine(e);
    if (line) say(`supervisor: ${line}`);
    // After start-up, every recovery and every failure reprints the table: counts stay visible.
    if (started && (e.type === 'ready' || e.type === 'failed')) say(`${renderChildTable(supervisor.status(), describe)}\n`);
  });

  let stopping: Promise<void> | undefined;
  let tail: { stop(): Promise<void> } | undefined;
  let redis: ReturnType<typeof createRedis> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      say(`\n${signal}: stopping the platform's processes (they drain; SIGKILL after ${((l.readinessDelayMs + l.drainTimeoutMs + 7000) / 1000).toFixed(0)}s)`);
      await tail?.stop().catch(() => undefined);
      redis?.disconnect();
      await supervisor.stop('SIGTERM');
      say(renderChildTable(supervisor.status(), describe));
      for (const f of files.values()) f.end();
      say(config.stack.mode === 'native' ? 'stack still running; stop it with: npm run stack -- down' : 'done');
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => stop('SIGHUP'));

  // The processor first: a gateway that reports ready before the views it serves are being kept
  // up to date would let the first minute's changes wait for the processor's start (issue 16).
  // Its own start failures are reported below; the others start regardless after at most 60 s.
  say(`  starting  ${CHILDREN.map((c) => c.name).join(', ')} as supervised processes, the processor first (logs: ${logsDir}/<name>.log)`);
  supervisor.start(['processor']);
  await Promise.race([supervisor.waitReady('processor').catch(() => undefined), new Promise((r) => setTimeout(r, 60_000).unref())]);
  if (stopping) return;
  supervisor.start();
  const results = await Promise.allSettled(CHILDREN.map((c) => supervisor.waitReady(c.name)));
  if (stopping) return;
  started = true;
  say(`\n${renderChildTable(supervisor.status(), describe)}\n`);
  if (results.every((r) => r.status === 'rejected')) {
    process.stderr.write('error: no platform process could start (see the lines above and the logs)\n');
    await supervisor.stop();
    process.exit(1);
  }

  const gw = supervisor.status().find((c) => c.name === 'gateway');
  const url = typeof gw?.info.url === 'string' ? gw.info.url : `http://${config.gateway.host}:${config.gateway.port}`;
  const proc = supervisor.status().find((c) => c.name === 'processor');
  say(`${renderStatus(status)}\n`);
  say(`platform up in ${(performance.now() / 1000).toFixed(1)}s (stack ${seconds.toFixed(1)}s). Where to look:`);
  say(`  storefront demo: ${url}/        (live availability grid)`);
  say(`  stock API:       curl ${url}/v1/stock/SKU-000001`);
  say(`  WebSocket feed:  ${url.replace(/^http/, 'ws')}/v1/stream?channel=storefront   (docs/websocket.md)`);
  // Credentials are never printed: `stack url` hands them to the tool on request (docs/stack.md).
  say(`  change stock:    psql "$(npm run -s stack -- url pg)" -c "UPDATE stock_levels SET on_hand = on_hand + 5 WHERE sku = 'SKU-000001' AND location_id = 'WH-1'"`);
  say(`  read a view:     redis-cli -u "$(npm run -s stack -- url redis)" --no-auth-warning HGETALL '${redisKeys(config.redis.prefix).summary('SKU-000001')}'`);
  if (proc?.info.metricsPort) say(`  metrics:         http://127.0.0.1:${String(proc.info.metricsPort)}/metrics`);
  say(`  adjust stock:    curl -X POST ${url}/v1/adjustments -H 'Authorization: Bearer ${config.gateway.devKeys ? 'dev-wms-key' : '<wms key>'}' -H 'content-type: application/json' -d '{"adjustmentId":"demo-'$(date +%s%N)'","sku":"SKU-000001","locationId":"WH-1","kind":"RECEIPT","quantity":5,"occurredAt":'$(date +%s%3N)',"sourceSystem":"me"}'   (docs/connectors.md)`);
  say(`  buy:             curl -X POST ${url}/v1/purchases -H "Idempotency-Key: $(date +%s%N)" -H 'content-type: application/json' ${config.auth.allowAnonymous ? "-H 'X-Customer-Id: me'" : "-H 'Authorization: Bearer <customer token>'"} -d '{"items":[{"sku":"SKU-000001","qty":1}]}'   (docs/purchase-path.md; anonymous buying is a development mode)`);
  say(`  traffic:         npm run simulate -- flash-sale | shoppers | wms | erp     (watch the demo page; docs/inspect-and-simulate.md)`);
  say(`  topics:          npm run inspect -- topics | lag | connectors | orders.events`);
  say(`  views vs truth:  npm run views -- reconcile      (rebuild: npm run views -- rebuild)`);
  say(`  raw CDC events:  npm run tail`);
  say(`  stack health:    npm run stack -- status      (stop everything: npm run stack -- down)`);
  say(`  logs:            ${logsDir}   (supervisor.log: every start, exit and restart)`);
  say(`\nlive: Redis views as the processor updates them from committed changes; Ctrl-C to stop\n`);
  redis = createRedis(config.redis);
  redis.on('error', () => undefined);
  tail = startFeedTail({ redis, feedKey: redisKeys(config.redis.prefix).feed, write: say });
}

main().catch((err: unknown) => {
  process.stderr.write(`error: ${redactUrlsIn(errorMessage(err))}\n`);
  if (!(err instanceof PlatformError)) process.stderr.write(`${redactUrlsIn((err as Error).stack ?? '')}\n`);
  if (config.stack.mode === 'native') process.stderr.write('(stop what was started with: npm run stack -- down)\n');
  process.exit(1);
});
