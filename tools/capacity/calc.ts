/**
 * The capacity calculator: `npm run capacity -- --attempts-per-sec N --subscribers N --changes-per-sec N`
 * prints how many gateways, Redis masters, Kafka partitions and processors a target load needs,
 * how busy the parts that cannot be scaled out would be, and which breaks first. The unit costs
 * default to the ones measured on this machine (tools/capacity/unit-costs.json, written by
 * `npm run bench:unit-costs -- --write tools/capacity/unit-costs.json`); every cost can be
 * overridden (`--cost name=value`, `--costs file.json`). The model is in model.ts, the formulas
 * in docs/capacity.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_LOAD, model, ModelInputError, type Load, type Needs, type UnitCosts } from './model.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const UNIT_COSTS_FILE = path.join(HERE, 'unit-costs.json');

/**
 * Costs not measured by unit-costs.ts: gateway memory per connection from bench:ws-idle-memory
 * (docs/benchmarks.md: ~4 KiB fixed + ~150 B per subscribed SKU).
 */
const FALLBACK: Pick<UnitCosts, 'gatewayBytesPerConnection' | 'gatewayBytesPerSubscribedSku'> = {
  gatewayBytesPerConnection: 4096,
  gatewayBytesPerSubscribedSku: 150,
};

export function loadUnitCosts(file = UNIT_COSTS_FILE): UnitCosts {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ModelInputError(`cannot read unit costs ${file}: ${(err as Error).message} (measure them with \`npm run bench:unit-costs -- --write ${file}\`)`);
  }
  let parsed: { costs?: Record<string, unknown> } & Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (err) {
    throw new ModelInputError(`unit costs ${file} is not JSON: ${(err as Error).message}`);
  }
  const costs = { ...FALLBACK, ...(parsed.costs ?? parsed) } as Record<string, unknown>;
  const missing = COST_NAMES.filter((k) => typeof costs[k] !== 'number');
  if (missing.length) throw new ModelInputError(`unit costs ${file} lacks ${missing.join(', ')}`);
  return Object.fromEntries(COST_NAMES.map((k) => [k, costs[k] as number])) as unknown as UnitCosts;
}

export const COST_NAMES: Array<keyof UnitCosts> = [
  'gatewayUsPerAttempt',
  'gatewayUsPerHotAttempt',
  'gatewayUsPerAcceptedPurchase',
  'gatewayFixedCores',
  'gatewayUsPerFeedEntry',
  'gatewayUsPerFrame',
  'gatewayUsPerItem',
  'gatewayBytesPerConnection',
  'gatewayBytesPerSubscribedSku',
  'redisUsPerAttempt',
  'redisUsPerHotAttempt',
  'redisUsPerAcceptedPurchase',
  'redisUsPerApply',
  'redisUsPerFeedEntryRead',
  'processorUsPerChange',
  'connectUsPerChange',
  'connectUsPerOrder',
  'kafkaUsPerChange',
  'postgresUsPerChange',
  'postgresUsPerTransaction',
  'postgresUsPerOrder',
];

/** Flag name -> the Load field it sets, and how the value is read. */
const LOAD_FLAGS: Record<string, [keyof Load, (v: number) => number | boolean]> = {
  'attempts-per-sec': ['attemptsPerSec', (v) => v],
  'hot-sku-share': ['hotSkuShare', (v) => v],
  'hot-sku-units': ['hotSkuUnits', (v) => v],
  'waiting-room-factor': ['waitingRoomFactor', (v) => v],
  'orders-per-sec': ['ordersPerSec', (v) => v],
  subscribers: ['subscribers', (v) => v],
  'skus-per-subscriber': ['skusPerSubscriber', (v) => v],
  'catalog-skus': ['catalogSkus', (v) => v],
  'changes-per-sec': ['changesPerSec', (v) => v],
  'changes-per-transaction': ['changesPerTransaction', (v) => v],
  'tick-ms': ['tickMs', (v) => v],
  'target-utilisation': ['targetUtilisation', (v) => v],
  'gateway-memory-gib': ['gatewayMemoryBytes', (v) => v * 2 ** 30],
  'max-connections-per-gateway': ['maxConnectionsPerGateway', (v) => v],
  'postgres-cores': ['postgresCores', (v) => v],
};

const USAGE = `usage: npm run capacity -- [--attempts-per-sec N] [--orders-per-sec N] [--hot-sku-share 0..1]
         [--hot-sku-units N] [--no-waiting-room] [--waiting-room-factor F]
         [--subscribers N] [--skus-per-subscriber K] [--catalog-skus S] [--changes-per-sec N] [--changes-per-transaction R] [--tick-ms T]
         [--target-utilisation U] [--gateway-memory-gib G] [--max-connections-per-gateway C] [--postgres-cores P]
         [--costs file.json] [--cost name=value ...] [--json]
unit costs: ${COST_NAMES.join(', ')}`;

export interface CliArgs {
  load: Load;
  costsFile: string | undefined;
  costOverrides: Partial<UnitCosts>;
  json: boolean;
  /** Whether --orders-per-sec was given (otherwise it follows from the attempts and the hot SKU's units). */
  ordersGiven: boolean;
}

/** Parses the calculator's flags; throws ModelInputError with one clear line on anything wrong. */
export function parseCli(argv: string[]): CliArgs {
  const load: Load = { ...DEFAULT_LOAD };
  const costOverrides: Partial<UnitCosts> = {};
  let costsFile: string | undefined;
  let json = false;
  let ordersGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--no-waiting-room') load.hotSkuWaitingRoom = false;
    else if (a === '--costs') {
      costsFile = argv[++i];
      if (!costsFile || costsFile.startsWith('--')) throw new ModelInputError('--costs needs a file');
    } else if (a === '--cost') {
      const kv = argv[++i] ?? '';
      const m = /^(\w+)=(.+)$/.exec(kv);
      if (!m) throw new ModelInputError(`--cost needs name=value (got "${kv}")`);
      const name = m[1] as keyof UnitCosts;
      if (!COST_NAMES.includes(name)) throw new ModelInputError(`--cost: unknown unit cost "${m[1]}" (one of ${COST_NAMES.join(', ')})`);
      const v = Number(m[2]);
      if (!Number.isFinite(v) || v < 0) throw new ModelInputError(`--cost ${name}: needs a number >= 0 (got "${m[2]}")`);
      costOverrides[name] = v;
    } else if (a.startsWith('--') && LOAD_FLAGS[a.slice(2)]) {
      const raw = argv[++i];
      const v = Number(raw?.replace(/_/g, ''));
      if (raw === undefined || raw.startsWith('--') || raw.trim() === '' || !Number.isFinite(v)) throw new ModelInputError(`${a} needs a number (got ${raw === undefined ? 'nothing' : `"${raw}"`})`);
      const [field, conv] = LOAD_FLAGS[a.slice(2)]!;
      (load as unknown as Record<string, number | boolean>)[field] = conv(v);
      if (field === 'ordersPerSec') ordersGiven = true;
    } else throw new ModelInputError(`unknown argument "${a}"\n${USAGE}`);
  }
  return { load, costsFile, costOverrides, json, ordersGiven };
}

/**
 * Orders per second when not given: a sale sells at most the hot SKU's units, and no faster than
 * the attempts arrive; at peak the first second of a sale writes min(attempts/s, units) orders.
 */
export function defaultOrders(load: Load): number {
  return Math.min(load.attemptsPerSec, load.attemptsPerSec > 0 ? load.hotSkuUnits : 0);
}

const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '∞');
const n2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '∞');
const pct = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)} %` : '∞');

export function renderTable(load: Load, needs: Needs): string {
  const r = needs.rates;
  const lines: string[] = [];
  lines.push(
    `load: ${n0(load.attemptsPerSec)} attempts/s (${pct(load.hotSkuShare)} on one SKU${load.hotSkuWaitingRoom ? ', waiting room' : ''}), ${n0(load.ordersPerSec)} orders/s, ` +
      `${n0(load.subscribers)} subscribers x ${load.skusPerSubscriber} SKUs, ${n0(load.changesPerSec)} changes/s over ${n0(load.catalogSkus)} SKUs (${load.changesPerTransaction} per transaction); sized at ${pct(load.targetUtilisation)} of a core`,
  );
  lines.push(`fan-out: ${n0(r.framesPerSec)} frames/s, ${n0(r.itemsPerSec)} items/s (per subscriber ${n2(r.framesPerSubscriberPerSec)} frames/s, ${n2(r.itemsPerSubscriberPerSec)} items/s; tick ${load.tickMs} ms)`);
  lines.push('');
  lines.push('needs');
  const g = needs.gateways;
  const rows: Array<[string, string, string]> = [
    ['gateways', n0(g.count), `by CPU ${n0(g.byCpu)}, by connections ${n0(g.byConnections)} (${n0(g.connectionsPerGateway)} per gateway); ${n2(g.coresDemand)} cores in all, feed read ${pct(g.feedShareOfCore)} of each`],
    ['Redis masters', n0(needs.redis.masters), `${n2(needs.redis.coresDemand)} cores of command execution in all`],
    ['processors', n0(needs.processors.count), `${n2(needs.processors.coresDemand)} cores; ${n0(r.changesPerSec)} changes/s including orders`],
    ['Kafka partitions', n0(needs.kafka.partitions), `>= 2 x processors (re-partitioning moves SKUs); broker ${n2(needs.kafka.brokerCores)} cores`],
    ['Connect tasks', '1 + 1', `stock connector ${n2(needs.connect.stockTaskCores)} cores, outbox connector ${n2(needs.connect.outboxTaskCores)} cores (one task each, cannot be split)`],
    ['Postgres', `${n2(needs.postgres.coresDemand)} cores`, `of ${load.postgresCores}`],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  for (const [a, b, c] of rows) lines.push(`  ${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
  lines.push('');
  const h = needs.hotSku;
  if (h.attemptsPerSec > 0) {
    lines.push(`hot SKU: ${n0(h.attemptsPerSec)} attempts/s on one slot = ${pct(h.utilisation)} of one Redis core; ceiling ${n0(h.ceilingAttemptsPerSec)} attempts/s`);
    if (h.waitingRoom) lines.push(`  waiting room: ${n0(h.waitingRoom.admitted)} tickets reach the gate (units x factor), handed out in ${n2(h.waitingRoom.secondsToAdmitAll ?? 0)} s; every later attempt is answered by the ticket script (202 waitlisted while units remain, then 409)`);
    lines.push('');
  }
  lines.push('single points (cannot be scaled by adding processes), busiest first');
  const wl = Math.max(...needs.limits.map((l) => l.resource.length));
  for (const l of needs.limits) lines.push(`  ${l.resource.padEnd(wl)}  ${pct(l.utilisation).padStart(7)}  ceiling ${l.ceiling}`);
  lines.push('');
  const f = needs.firstBottleneck;
  lines.push(
    f.utilisation >= 1
      ? `breaks first: ${f.resource} at ${pct(f.utilisation)} of its capacity (ceiling ${f.ceiling})`
      : f.utilisation >= load.targetUtilisation
        ? `first at risk: ${f.resource} at ${pct(f.utilisation)} (above the ${pct(load.targetUtilisation)} target; ceiling ${f.ceiling})`
        : `nothing saturates; the busiest single point is ${f.resource} at ${pct(f.utilisation)} (ceiling ${f.ceiling})`,
  );
  if (!Number.isFinite(g.count)) lines.push(`breaks: one gateway cannot read the feed (${n0(r.changesPerSec)} entries/s) within ${pct(load.targetUtilisation)} of its core`);
  return lines.join('\n');
}

export function main(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const cli = parseCli(argv);
    const costs: UnitCosts = { ...loadUnitCosts(cli.costsFile ? path.resolve(cli.costsFile) : UNIT_COSTS_FILE), ...cli.costOverrides };
    const load: Load = { ...cli.load, ordersPerSec: cli.ordersGiven ? cli.load.ordersPerSec : defaultOrders(cli.load) };
    const needs = model(load, costs);
    if (cli.json) process.stdout.write(`${JSON.stringify({ load, costs, needs }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
    else process.stdout.write(`${renderTable(load, needs)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ModelInputError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) process.exit(main(process.argv.slice(2)));
