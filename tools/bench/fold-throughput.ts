/**
 * Benchmark: stock processor fold throughput, side by side with the raw consume rate of the same
 * topic in the same run (the machine is shared and noisy, so the ratio is the figure to compare).
 *
 * A private CDC topic (6 partitions) is filled with N synthetic Debezium update events for
 * stock_levels (SKUS x LOCATIONS rows, version increasing per event). Then, alternately:
 *   - raw:  a bare kafkajs consumer (fresh group, from the beginning, eachBatch that only counts
 *           and resolves offsets) reads all N; rate = messages / seconds from first to last batch;
 *   - fold: the real processor (startStockProcessor, real codecs and metrics) on a fresh group and
 *           a fresh Redis prefix, publishing to private deltas/levels/dlq topics, until
 *           invsync_processor_events_total{applied,duplicate,stale} reaches N (polled every
 *           50 ms); rate = events counted after the first poll that saw any / seconds between
 *           that poll and the one that saw all N.
 * Each fold run also records where its batch time goes (Avro encode, Kafka sendBatch, each kind of
 * Redis pipeline named by its Lua script or first command, the rest) by wrapping the clients
 * handed to the processor, and the CPU used by this process, by Redis and by the whole machine;
 * the processor code is unchanged. With --profile one extra fold run is made under the V8 CPU
 * profiler (not counted in the figures) and its self time is reported by module and function.
 *
 * The private topics, consumer groups and Redis keys are deleted at the end.
 *
 * Usage: npm run bench:fold -- [--events 200000] [--skus 10000] [--locations 3] [--rounds 2]
 *          [--send-batch 1000] [--in-flight 4] [--timeout 180] [--profile] [--json]
 */
import { Session } from 'node:inspector/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { destination, pino } from 'pino';
import { registerStockSchemas, type StockCodecs } from '../../lib/avro-registry.ts';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createRedis } from '../../lib/redis.ts';
import { createProcessorMetrics, type ProcessorMetrics } from '../../stream-processors/metrics.ts';
import { startStockProcessor, type Encoder } from '../../stream-processors/processor.ts';
import type { StockDelta, StockLevel } from '../../schemas/generated/avro-types.ts';
import { cdcEvent } from '../../tests/processor-helpers.ts';
import { machine, parseArgs } from './args.ts';
import { busyShare, machineJiffies } from './lib/cpu.ts';
import { createPrivateTopics, deletePrivateTopicsAndGroups } from './lib/kafka-topics.ts';
import { deletePrefix, redisSnapshot } from './lib/redis-keys.ts';
import { progress, runId as newRunId } from './lib/run.ts';
import { timedKafka, timedRedis } from './lib/timed-clients.ts';

const args = parseArgs(process.argv.slice(2));
const events = Math.round(args.get('events', 200_000));
const skus = Math.round(args.get('skus', 10_000));
const locations = Math.round(args.get('locations', 3));
const rounds = Math.round(args.get('rounds', 2));
const sendBatch = Math.round(args.get('send-batch', 1000));
const inFlight = Math.round(args.get('in-flight', 4));
const timeoutMs = args.get('timeout', 180) * 1000;
const profile = args.has('profile');
const GOAL_RATE = 20_000;
const GOAL_RATIO = 0.5;
/** Same as the processor's default, so both phases read with the same parallelism. */
const CONCURRENCY = 6; // as the processor (stream-processors/processor.ts)

const config = loadConfigOrExit();
const runId = newRunId(3);
const topics = {
  cdc: `bench-fold-${runId}-cdc`,
  deltas: `bench-fold-${runId}-deltas`,
  levels: `bench-fold-${runId}-levels`,
  dlq: `bench-fold-${runId}-dlq`,
};
const groups: string[] = [];
const prefixes: string[] = [];
const kafka = createKafka({ connection: config.kafka, clientId: `bench-fold-${runId}` });
const redis = createRedis(config.redis);
// The processor's own logs (warnings and errors only) go to stderr, never into --json output.
const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn', base: { component: 'bench-fold' } }, destination(2));

interface RawRun {
  kind: 'raw';
  round: number;
  messages: number;
  seconds: number;
  rate: number;
  /** Process CPU time (user + system) over wall time while reading: 1.0 = one core busy. */
  cpuCores: number;
  resources: Resources;
}

interface PipelineTime {
  pipelines: number;
  commands: number;
  /** Wall time from exec() to the replies, summed over pipelines (concurrent partitions overlap). */
  seconds: number;
}

interface Breakdown {
  /** Sum over batches of invsync_processor_batch_apply_seconds (decode -> commit). */
  batchSeconds: number;
  batches: number;
  avroEncodeSeconds: number;
  avroEncodes: number;
  kafkaSendSeconds: number;
  /** Redis pipelines by what they run: a Lua script's file name, or the first command (xadd: the feed). */
  redis: Record<string, PipelineTime>;
  /** batchSeconds minus the measured parts: JSON decode, fold bookkeeping, heartbeats, commits. */
  otherSeconds: number;
}

interface FoldRun {
  kind: 'fold';
  round: number;
  events: number;
  seconds: number;
  rate: number;
  outcomes: Record<string, number>;
  cpuCores: number;
  resources: Resources;
  breakdown: Breakdown;
}

async function createTopics(): Promise<void> {
  await createPrivateTopics(kafka, [
    { topic: topics.cdc, numPartitions: 6 },
    { topic: topics.deltas, numPartitions: 6 },
    { topic: topics.levels, numPartitions: 6 },
    { topic: topics.dlq, numPartitions: 1 },
  ]);
}

async function fill(): Promise<{ seconds: number; rate: number }> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const started = performance.now();
  const base = Date.now();
  let next = 0;
  let lastReport = started;
  const batchAt = (from: number) => {
    const messages: Array<{ key: string; value: string }> = [];
    for (let i = from; i < Math.min(events, from + sendBatch); i++) {
      const s = i % skus;
      const loc = Math.floor(i / skus) % locations;
      messages.push(
        cdcEvent({
          op: 'u',
          sku: `FOLD-${String(s + 1).padStart(6, '0')}`,
          locationId: `WH-${loc + 1}`,
          onHand: 100 + (i % 50),
          reserved: i % 7,
          safetyStock: 2,
          version: i + 1,
          commitTs: base + Math.floor(i / 100),
        }),
      );
    }
    return messages;
  };
  // `inFlight` senders, each taking the next batch: several requests in flight, bounded memory.
  const sender = async () => {
    while (next < events) {
      const from = next;
      next += sendBatch;
      await producer.send({ topic: topics.cdc, acks: 1, messages: batchAt(from) });
      if (performance.now() - lastReport >= 2000) {
        lastReport = performance.now();
        progress(`  fill: ${Math.min(next, events)}/${events} events produced`);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, sender));
  await producer.disconnect();
  const seconds = (performance.now() - started) / 1000;
  return { seconds, rate: Math.round(events / seconds) };
}

function newGroup(kind: string, round: number): string {
  const g = `bench-fold-${runId}-${kind}-${round}`;
  groups.push(g);
  return g;
}

interface Resources {
  /** Share of all cores busy on the machine (every process: stack, load, this one). */
  machineBusy: number | null;
  /** Redis server CPU, in cores (seconds per second). */
  redisCores: number;
  /** Redis' own time per call for the commands the fold uses (all clients; this run dominates). */
  redisUsecPerCall: Record<string, { calls: number; usecPerCall: number }>;
}

async function startResources(): Promise<() => Promise<Resources>> {
  const j0 = machineJiffies();
  const r0 = await redisSnapshot(redis);
  const t0 = performance.now();
  return async () => {
    const seconds = (performance.now() - t0) / 1000;
    const j1 = machineJiffies();
    const r1 = await redisSnapshot(redis);
    const redisUsecPerCall: Resources['redisUsecPerCall'] = {};
    for (const name of ['evalsha', 'xadd']) {
      const a = r1.cmd[name] ?? { calls: 0, usec: 0 };
      const b = r0.cmd[name] ?? { calls: 0, usec: 0 };
      const calls = a.calls - b.calls;
      if (calls > 0) redisUsecPerCall[name] = { calls, usecPerCall: +((a.usec - b.usec) / calls).toFixed(2) };
    }
    return {
      machineBusy: busyShare(j0, j1),
      redisCores: +((r1.cpu - r0.cpu) / seconds).toFixed(2),
      redisUsecPerCall,
    };
  };
}

async function rawRun(round: number): Promise<RawRun> {
  const consumer = kafka.consumer({ groupId: newGroup('raw', round), maxWaitTimeInMs: 20 });
  let count = 0;
  let first = 0;
  let last = 0;
  let cpuAtFirst = process.cpuUsage();
  let resources: Promise<() => Promise<Resources>> | undefined;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.connect();
  await consumer.subscribe({ topic: topics.cdc, fromBeginning: true });
  await consumer.run({
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: CONCURRENCY,
    eachBatch: async ({ batch, resolveOffset }) => {
      if (batch.messages.length === 0) return;
      if (first === 0) {
        first = performance.now();
        cpuAtFirst = process.cpuUsage();
        resources = startResources();
      }
      count += batch.messages.length;
      resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
      if (count >= events && last === 0) {
        last = performance.now();
        done();
      }
    },
  });
  const ticker = setInterval(() => progress(`  raw ${round}: ${count}/${events} messages read`), 2000);
  try {
    await Promise.race([finished, sleep(timeoutMs).then(() => Promise.reject(new Error(`raw run ${round}: ${count}/${events} after ${timeoutMs / 1000} s`)))]);
  } finally {
    clearInterval(ticker);
  }
  const cpu = process.cpuUsage(cpuAtFirst);
  const res = await (await resources!)();
  await consumer.disconnect();
  const seconds = (last - first) / 1000;
  return {
    kind: 'raw',
    round,
    messages: count,
    seconds: +seconds.toFixed(3),
    rate: Math.round(count / seconds),
    cpuCores: +((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2),
    resources: res,
  };
}

/** Accumulators filled by the wrappers below; reset per fold run. */
const acc = { encode: 0, encodes: 0, send: 0, redis: {} as Record<string, { pipelines: number; commands: number; ms: number }> };

function timedEncoder<T>(inner: Encoder<T>): Encoder<T> {
  return {
    async encode(value: T): Promise<Buffer> {
      const t = performance.now();
      try {
        return await inner.encode(value);
      } finally {
        acc.encode += performance.now() - t;
        acc.encodes++;
      }
    },
  };
}

/** A Redis connection whose pipelines time their exec, split by the first queued command. */
function timedProcRedis() {
  return timedRedis(config.redis.url, (kind, commands, ms) => {
    const a = (acc.redis[kind] ??= { pipelines: 0, commands: 0, ms: 0 });
    a.pipelines++;
    a.commands += commands;
    a.ms += ms;
  });
}

async function counted(metrics: ProcessorMetrics): Promise<{ total: number; outcomes: Record<string, number> }> {
  const outcomes: Record<string, number> = {};
  for (const v of (await metrics.events.get()).values) outcomes[String(v.labels.outcome)] = v.value;
  return { total: (outcomes.applied ?? 0) + (outcomes.duplicate ?? 0) + (outcomes.stale ?? 0), outcomes };
}

async function histogramSum(metrics: ProcessorMetrics): Promise<{ sum: number; count: number }> {
  const values = (await metrics.batchApply.get()).values;
  return {
    sum: values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0,
    count: values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0,
  };
}

async function foldRun(round: number, codecs: StockCodecs, cpuProfile?: Session): Promise<FoldRun> {
  const prefix = `benchfold-${runId}-${round}`;
  prefixes.push(prefix);
  const metrics = createProcessorMetrics({ defaults: false });
  const procRedis = timedProcRedis();
  const procKafka = timedKafka(config.kafka, `bench-fold-${runId}-proc-${round}`, (ms) => (acc.send += ms));
  Object.assign(acc, { encode: 0, encodes: 0, send: 0, redis: {} });
  if (cpuProfile) {
    await cpuProfile.post('Profiler.enable');
    await cpuProfile.post('Profiler.setSamplingInterval', { interval: 500 });
    await cpuProfile.post('Profiler.start');
  }
  const proc = await startStockProcessor({
    kafka: procKafka,
    redis: procRedis,
    codecs: { stockDelta: timedEncoder<StockDelta>(codecs.stockDelta), stockLevel: timedEncoder<StockLevel>(codecs.stockLevel) },
    logger,
    metrics,
    groupId: newGroup('fold', round),
    fromBeginning: true,
    prefix,
    feedMaxLen: config.processor.feedMaxLen,
    topics,
  });
  let first = 0;
  let firstCount = 0;
  let last = 0;
  let cpuAtFirst = process.cpuUsage();
  let lastReport = performance.now();
  let resources: (() => Promise<Resources>) | undefined;
  let seen = { total: 0, outcomes: {} as Record<string, number> };
  let cpu: NodeJS.CpuUsage;
  let res: Resources;
  const deadline = performance.now() + timeoutMs;
  try {
    for (;;) {
      seen = await counted(metrics);
      const now = performance.now();
      if (first === 0 && seen.total > 0) {
        first = now;
        firstCount = seen.total;
        cpuAtFirst = process.cpuUsage();
        resources = await startResources();
      }
      if (seen.total >= events) {
        last = now;
        break;
      }
      if (now > deadline) throw new Error(`fold run ${round}: ${seen.total}/${events} events after ${timeoutMs / 1000} s`);
      if (now - lastReport >= 2000) {
        lastReport = now;
        progress(`  fold ${round}: ${seen.total}/${events} events folded`);
      }
      await sleep(50);
    }
    cpu = process.cpuUsage(cpuAtFirst);
    res = await resources!();
  } finally {
    await proc.stop();
    procRedis.disconnect();
  }
  if (cpuProfile) {
    const { profile: p } = await cpuProfile.post('Profiler.stop');
    profileResult = summarizeProfile(p);
    await cpuProfile.post('Profiler.disable');
  }
  const seconds = (last - first) / 1000;
  const h = await histogramSum(metrics);
  const ms = (x: number) => +(x / 1000).toFixed(3);
  const redisMs = Object.values(acc.redis).reduce((sum, a) => sum + a.ms, 0);
  const measured = acc.encode + redisMs + acc.send;
  return {
    kind: 'fold',
    round,
    events: seen.total,
    seconds: +seconds.toFixed(3),
    rate: Math.round((seen.total - firstCount) / seconds),
    outcomes: seen.outcomes,
    cpuCores: +((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2),
    resources: res,
    breakdown: {
      batchSeconds: +h.sum.toFixed(3),
      batches: h.count,
      avroEncodeSeconds: ms(acc.encode),
      avroEncodes: acc.encodes,
      kafkaSendSeconds: ms(acc.send),
      redis: Object.fromEntries(Object.entries(acc.redis).map(([k, a]) => [k, { pipelines: a.pipelines, commands: a.commands, seconds: ms(a.ms) }])),
      otherSeconds: +Math.max(0, h.sum - measured / 1000).toFixed(3),
    },
  };
}

interface ProfileSummary {
  sampledSeconds: number;
  byModule: Array<{ module: string; seconds: number; share: number }>;
  topFunctions: Array<{ fn: string; where: string; seconds: number; share: number }>;
}
let profileResult: ProfileSummary | undefined;

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

function moduleOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'program (native/V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.includes('/stream-processors/')) return 'stream-processors';
  if (url.includes('/lib/')) return 'lib';
  if (url.includes('/bench/')) return 'bench';
  if (url.startsWith('node:') || url === '') return 'node internals';
  return url;
}

function summarizeProfile(p: { nodes: CpuProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }): ProfileSummary {
  // Self time per node from the samples and their time deltas (µs).
  const self = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
  const byModule = new Map<string, number>();
  const byFn = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  for (const n of p.nodes) {
    const us = self.get(n.id) ?? 0;
    if (us === 0) continue;
    total += us;
    const mod = moduleOf(n.callFrame.url, n.callFrame.functionName);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
    const where = `${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}:${n.callFrame.lineNumber + 1}`;
    const key = `${n.callFrame.functionName}@${where}`;
    const e = byFn.get(key) ?? { fn: n.callFrame.functionName || '(anonymous)', where, us: 0 };
    e.us += us;
    byFn.set(key, e);
  }
  const share = (us: number) => +(us / total).toFixed(3);
  return {
    sampledSeconds: +(total / 1e6).toFixed(2),
    byModule: [...byModule].sort((a, b) => b[1] - a[1]).map(([module, us]) => ({ module, seconds: +(us / 1e6).toFixed(2), share: share(us) })),
    topFunctions: [...byFn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 20)
      .map((f) => ({ fn: f.fn, where: f.where, seconds: +(f.us / 1e6).toFixed(3), share: share(f.us) })),
  };
}

async function cleanup(): Promise<void> {
  await deletePrivateTopicsAndGroups(kafka, groups, Object.values(topics), `could not delete topics ${Object.values(topics).join(', ')}`);
  for (const p of prefixes) {
    try {
      await deletePrefix(redis, p);
    } catch (err) {
      progress(`  cleanup: could not delete Redis keys ${p}:*: ${(err as Error).message}`);
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : Math.round((s[mid - 1]! + s[mid]!) / 2);
}

const raws: RawRun[] = [];
const folds: FoldRun[] = [];
let fillResult: { seconds: number; rate: number } | undefined;
let failure: Error | undefined;
const started = performance.now();
try {
  progress(`fold throughput: ${events} events over ${skus} SKUs x ${locations} locations, ${rounds} round(s) of raw + fold (run ${runId})`);
  const codecs = await registerStockSchemas(config.registry.url);
  await createTopics();
  fillResult = await fill();
  progress(`  filled ${topics.cdc}: ${events} events in ${fillResult.seconds.toFixed(1)} s (${fillResult.rate}/s)`);
  for (let round = 1; round <= rounds; round++) {
    const raw = await rawRun(round);
    raws.push(raw);
    progress(`  raw ${round}: ${raw.rate}/s (${raw.messages} in ${raw.seconds} s, ${raw.cpuCores} cores)`);
    const fold = await foldRun(round, codecs);
    folds.push(fold);
    progress(`  fold ${round}: ${fold.rate}/s (${fold.events} in ${fold.seconds} s, ${fold.cpuCores} cores); ratio ${(fold.rate / raw.rate).toFixed(2)}`);
  }
  if (profile) {
    progress('  profiling one more fold run under the V8 CPU profiler');
    const session = new Session();
    session.connect();
    const fold = await foldRun(rounds + 1, codecs, session);
    session.disconnect();
    progress(`  profiled fold: ${fold.rate}/s (profiler overhead included; not counted in the figures)`);
  }
} catch (err) {
  failure = err as Error;
  progress(`error: ${failure.message}`);
} finally {
  progress('  cleaning up topics, groups and Redis keys');
  await cleanup();
  redis.disconnect();
}

const rawRates = raws.map((r) => r.rate);
const foldRates = folds.map((r) => r.rate);
const rawMedian = median(rawRates);
const foldMedian = median(foldRates);
const ratioMedian = +(foldMedian / rawMedian).toFixed(3);
const result = {
  benchmark: 'fold-throughput',
  machine: machine(),
  events,
  skus,
  locations,
  rounds,
  partitions: 6,
  partitionsConsumedConcurrently: CONCURRENCY,
  fill: fillResult,
  runs: raws.flatMap((r, i) => (folds[i] ? [r, folds[i]] : [r])),
  ratios: folds.map((f, i) => +(f.rate / raws[i]!.rate).toFixed(3)),
  raw: { best: Math.max(...rawRates), median: rawMedian },
  fold: { best: Math.max(...foldRates), median: foldMedian },
  ratio: { median: ratioMedian, best: +Math.max(...folds.map((f, i) => f.rate / raws[i]!.rate)).toFixed(3) },
  goals: {
    foldRate: { goal: GOAL_RATE, measured: foldMedian, met: foldMedian >= GOAL_RATE },
    ratio: { goal: GOAL_RATIO, measured: ratioMedian, met: ratioMedian >= GOAL_RATIO },
  },
  ...(profileResult ? { profile: profileResult } : {}),
  totalSeconds: +((performance.now() - started) / 1000).toFixed(1),
  ...(failure ? { error: failure.message } : {}),
};

if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  const out: string[] = [];
  out.push(`fold throughput, ${events} events (${skus} SKUs x ${locations} locations, 6 partitions), ${folds.length} round(s):`);
  for (let i = 0; i < raws.length; i++) {
    const f = folds[i];
    out.push(`  round ${i + 1}: raw ${raws[i]!.rate}/s (machine ${Math.round((raws[i]!.resources.machineBusy ?? Number.NaN) * 100)}% busy)   fold ${f ? `${f.rate}/s   ratio ${(f.rate / raws[i]!.rate).toFixed(2)}` : '-'}`);
  }
  out.push(`  median: raw ${rawMedian}/s, fold ${foldMedian}/s, ratio ${ratioMedian}   (best fold ${result.fold.best}/s)`);
  out.push(`  goal fold >= ${GOAL_RATE}/s: ${result.goals.foldRate.met ? 'met' : 'MISSED'}; goal ratio >= ${GOAL_RATIO}: ${result.goals.ratio.met ? 'met' : 'MISSED'}`);
  for (const f of folds) {
    const b = f.breakdown;
    out.push(
      `  fold ${f.round} batch time ${b.batchSeconds} s over ${b.batches} batches: Avro encode ${b.avroEncodeSeconds} s (${b.avroEncodes} records), Kafka send ${b.kafkaSendSeconds} s, ` +
        Object.entries(b.redis)
          .map(([k, a]) => `Redis ${k} ${a.seconds} s (${a.commands} commands)`)
          .join(', ') +
        `, other ${b.otherSeconds} s`,
    );
    const r = f.resources;
    const calls = Object.entries(r.redisUsecPerCall).map(([n, c]) => `${n} ${c.usecPerCall} µs/call`).join(', ');
    out.push(`    CPU while folding: this process ${f.cpuCores} cores, Redis ${r.redisCores} cores (${calls}), machine ${r.machineBusy === null ? '?' : `${Math.round(r.machineBusy * 100)}%`} busy`);
  }
  if (profileResult) {
    out.push(`  CPU profile of one extra fold run (${profileResult.sampledSeconds} s sampled), self time by module:`);
    for (const m of profileResult.byModule.slice(0, 12)) out.push(`    ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.module}`);
    out.push('  top functions by self time:');
    for (const f of profileResult.topFunctions.slice(0, 12)) out.push(`    ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.fn}  ${f.where}`);
  }
  if (failure) out.push(`  error: ${failure.message}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
process.exit(failure ? 1 : 0);
