/**
 * Benchmark: Postgres commit -> Redis stock view updated, end to end through Debezium, Kafka and
 * the stock processor, at a steady update rate.
 *
 * A processor runs in this process on the real CDC topic (fresh consumer group starting at the
 * end, unique Redis prefix) but publishes its deltas/levels/DLQ to private topics, so the real
 * stock.* topics are not flooded. Once it is live (probe row applied), single-row UPDATE
 * transactions run at RATE per second over ROWS rows 'BENCHV-00001'.. x 'WH-1'; each client ack
 * is recorded by (sku, version) from RETURNING version. The processor appends every applied SKU
 * state to its gateway feed stream `<prefix>:feed` (after applying it to the view and publishing
 * the delta); a dedicated Redis connection reads that stream with XREAD BLOCK and records the
 * receipt time per (sku, version). Latencies per event:
 *   - fromCommitTs:  feed receipt minus the Postgres commit timestamp carried by the event;
 *   - fromClientAck: feed receipt minus the moment the client saw COMMIT return;
 *   - legs: a bare consumer on the CDC topic also records its receipt, which splits the path into
 *     commit -> topic (Debezium, broker) and topic -> feed (the processor).
 * The processor's own histogram invsync_processor_commit_to_view_seconds (every event it applied,
 * the probe and anyone else's changes included) is summarised too.
 *
 * Usage: npm run bench:commit-to-view -- [--rate 1000] [--seconds 20] [--rows 1000]
 *          [--connections 16] [--json]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { destination, pino } from 'pino';
import { registerStockSchemas } from '../../lib/avro-registry.ts';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { TOPICS } from '../../lib/topics.ts';
import { RedisViews } from '../../stream-processors/adapters/redis-views.ts';
import { decodeStockChange } from '../../stream-processors/domain/stock-change.ts';
import { createProcessorMetrics } from '../../stream-processors/metrics.ts';
import { startStockProcessor, type StockProcessor } from '../../stream-processors/processor.ts';
import { waitProcessorLive } from '../../tests/processor-helpers.ts';
import { machine, parseArgs } from './args.ts';
import { busyShare, machineJiffies } from './lib/cpu.ts';
import type { SkuState } from '../../lib/contracts/feed.ts';
import { readFeed } from './lib/feed.ts';
import { consumeFromEnd, createPrivateTopics, deletePrivateTopicsAndGroups } from './lib/kafka-topics.ts';
import { deletePrefix } from './lib/redis-keys.ts';
import { progress, runId as newRunId } from './lib/run.ts';
import { stats, type Stats } from './lib/stats.ts';
import { timedKafka, timedRedis } from './lib/timed-clients.ts';
import { seedBenchRows, steadyUpdates, updateLoadArgs, waitUntil } from './lib/update-load.ts';

const args = parseArgs(process.argv.slice(2));
const { rate, seconds, rows, connections } = updateLoadArgs(args);
const GOAL_P99_MS = 100;
const config = loadConfigOrExit();
const runId = newRunId(3);
const prefix = `benchc2v-${runId}`;
const topics = { deltas: `bench-c2v-${runId}-deltas`, levels: `bench-c2v-${runId}-levels`, dlq: `bench-c2v-${runId}-dlq` };
const groups = { processor: `bench-c2v-${runId}-proc`, topicLeg: `bench-c2v-${runId}-topic` };
const skuOf = (i: number) => `BENCHV-${String(i + 1).padStart(5, '0')}`;

/** Prometheus-style quantile estimate from cumulative buckets (linear within a bucket). */
function bucketQuantile(q: number, buckets: Array<{ le: number; count: number }>, total: number): number {
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe; // beyond the last finite bound: its lower edge
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1, b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

// Where the processor's batch time goes: its clients are wrapped (the processor code is unchanged)
// and every call's wall time is recorded by kind.
const calls: Record<string, number[]> = {};
const record = (kind: string, ms: number) => (calls[kind] ??= []).push(ms);

const pool = createPgPool(config.pg.url, { max: connections, application: 'invsync-bench-c2v' });
const redis = createRedis(config.redis);
const feedRedis = createRedis(config.redis);
const procRedis = timedRedis(config.redis.url, (kind, _commands, ms) => record(`redis ${kind}`, ms));
const kafka = createKafka({ connection: config.kafka, clientId: `bench-c2v-${runId}` });
const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn', base: { component: 'bench-c2v' } }, destination(2));
const metrics = createProcessorMetrics({ defaults: false });

const acks = new Map<string, number>();
const viewAt = new Map<string, number>();
const viewCommitTs = new Map<string, number>();
const topicAt = new Map<string, number>();
let processor: StockProcessor | undefined;
let topicConsumer: ReturnType<typeof kafka.consumer> | undefined;
let readingFeed = true;
let feedReader: Promise<void> | undefined;
let failure: Error | undefined;
const result: Record<string, unknown> = { benchmark: 'commit-to-view', machine: machine(), rate, seconds, rows, connections };

function onFeedEntry(state: SkuState, now: number): void {
  if (!state.sku.startsWith('BENCHV-')) return;
  const key = `${state.sku}/${state.version}`;
  if (!viewAt.has(key)) {
    viewAt.set(key, now);
    viewCommitTs.set(key, state.commitTs);
  }
}

async function startTopicLeg(): Promise<void> {
  topicConsumer = await consumeFromEnd(kafka, TOPICS.cdcStockLevels, groups.topicLeg, async ({ message }) => {
    const now = Date.now();
    const d = decodeStockChange(message.value?.toString() ?? null);
    if (!d.ok || !('change' in d) || !d.change.row || !d.change.sku.startsWith('BENCHV-')) return;
    topicAt.set(`${d.change.sku}/${d.change.row.version}`, now);
  });
}

async function cleanup(): Promise<void> {
  readingFeed = false;
  await processor?.stop().catch(() => undefined);
  await topicConsumer?.disconnect().catch(() => undefined);
  await feedReader?.catch(() => undefined);
  await deletePrivateTopicsAndGroups(kafka, Object.values(groups), Object.values(topics));
  await deletePrefix(redis, prefix).catch((err: Error) => progress(`  cleanup: could not delete Redis keys ${prefix}:*: ${err.message}`));
  await pool.end().catch(() => undefined);
  redis.disconnect();
  feedRedis.disconnect();
  procRedis.disconnect();
}

try {
  progress(`commit -> Redis view at ${rate} updates/s for ${seconds} s over ${rows} rows (prefix ${prefix})`);
  await seedBenchRows(pool, 'BENCHV-', rows);
  await createPrivateTopics(kafka, [
    { topic: topics.deltas, numPartitions: 6 },
    { topic: topics.levels, numPartitions: 6 },
    { topic: topics.dlq, numPartitions: 1 },
  ]);
  processor = await startStockProcessor({
    kafka: timedKafka(config.kafka, `bench-c2v-${runId}-proc`, (ms) => record('kafka sendBatch', ms)),
    redis: procRedis,
    codecs: await registerStockSchemas(config.registry.url),
    logger,
    metrics,
    groupId: groups.processor,
    fromBeginning: false,
    prefix,
    feedMaxLen: config.processor.feedMaxLen,
    topics,
  });
  await processor.joined;
  progress('  processor joined its group; waiting until it applies a probe change');
  await waitProcessorLive(pool, new RedisViews({ redis, prefix }), 'BENCHV-PROBE', 60_000);
  await startTopicLeg();
  feedReader = readFeed(feedRedis, `${prefix}:feed`, '0-0', () => readingFeed, onFeedEntry);
  await sleep(2000); // let the topic-leg consumer's group settle before the load starts

  for (const k of Object.keys(calls)) delete calls[k]; // the load window only
  const j0 = machineJiffies();
  const c0 = process.cpuUsage();
  const { total, errors, elapsed } = await steadyUpdates(pool, {
    rate,
    seconds,
    rows,
    skuOf,
    onAck: (sku, version, at) => void acks.set(`${sku}/${version}`, at),
    onReport: (sent, total) => progress(`  ${sent}/${total} updates sent, ${acks.size} acked, ${viewAt.size} views updated`),
  });
  const cpu = process.cpuUsage(c0);
  const j1 = machineJiffies();
  await waitUntil(() => ![...acks.keys()].some((k) => !viewAt.has(k)), 30_000);

  const fromCommit: number[] = [];
  const fromAck: number[] = [];
  const commitToTopic: number[] = [];
  const topicToView: number[] = [];
  for (const [id, ack] of acks) {
    const v = viewAt.get(id);
    if (v === undefined) continue;
    const commitTs = viewCommitTs.get(id)!;
    fromCommit.push(v - commitTs);
    fromAck.push(v - ack);
    const t = topicAt.get(id);
    if (t !== undefined) {
      commitToTopic.push(t - commitTs);
      topicToView.push(v - t);
    }
  }
  const ms = (s: number) => Math.round(s * 1000);
  const summary = async (h: typeof metrics.commitToView) => {
    const values = (await h.get()).values;
    const count = values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const sum = values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
    const buckets = values
      .filter((v) => v.metricName?.endsWith('_bucket'))
      .map((v) => ({ le: v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le), count: v.value }))
      .sort((a, b) => a.le - b.le);
    return {
      count,
      meanMs: count ? +((sum / count) * 1000).toFixed(1) : null,
      p50Ms: ms(bucketQuantile(0.5, buckets, count)),
      p99Ms: ms(bucketQuantile(0.99, buckets, count)),
      buckets: buckets.map((b) => ({ le: Number.isFinite(b.le) ? b.le : '+Inf', count: b.count })),
    };
  };
  const commitStats = stats(fromCommit);
  Object.assign(result, {
    updates: total,
    acked: acks.size,
    errors,
    matched: fromCommit.length,
    achievedRate: Math.round(acks.size / elapsed),
    fromCommitTs: commitStats,
    fromClientAck: stats(fromAck),
    legs: { events: commitToTopic.length, commitToTopic: stats(commitToTopic), topicToView: stats(topicToView) },
    processorHistogram: { metric: 'invsync_processor_commit_to_view_seconds', ...(await summary(metrics.commitToView)) },
    /** The processor's time per batch, decode to offset commit (its own share of topic -> view). */
    processorBatchApply: { metric: 'invsync_processor_batch_apply_seconds', ...(await summary(metrics.batchApply)) },
    /** During the load: share of all cores busy (everything on the machine), and this process (load generator, processor, readers). */
    cpu: {
      machineBusy: busyShare(j0, j1),
      processCores: +((cpu.user + cpu.system) / 1e6 / elapsed).toFixed(2),
    },
    /** Wall time of the processor's calls to Redis and Kafka during the load, per call. */
    processorCalls: Object.fromEntries(
      Object.entries(calls).map(([kind, xs]) => {
        const st = stats(xs);
        return [kind, { calls: xs.length, meanMs: +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2), p50Ms: +st.p50.toFixed(2), p99Ms: +st.p99.toFixed(2), maxMs: +st.max.toFixed(1) }];
      }),
    ),
    goal: { p99Ms: GOAL_P99_MS, measured: commitStats.p99, met: commitStats.p99 < GOAL_P99_MS },
  });
} catch (err) {
  failure = err as Error;
  progress(`error: ${failure.message}`);
  result.error = failure.message;
} finally {
  progress('  cleaning up: processor, topics, groups, Redis keys');
  await cleanup();
}

if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else if (result.fromCommitTs) {
  const r = result as {
    matched: number;
    acked: number;
    achievedRate: number;
    fromCommitTs: Stats;
    fromClientAck: Stats;
    legs: { events: number; commitToTopic: Stats; topicToView: Stats };
    processorHistogram: { count: number; p50Ms: number; p99Ms: number };
    processorBatchApply: { count: number; meanMs: number; p50Ms: number; p99Ms: number };
    processorCalls: Record<string, { calls: number; meanMs: number; p50Ms: number; p99Ms: number }>;
    cpu: { machineBusy: number | null; processCores: number };
    goal: { met: boolean };
  };
  const f = (s: Stats) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`;
  process.stdout.write(
    [
      `commit -> Redis view at ${rate} updates/s for ${seconds} s: ${r.matched}/${r.acked} events matched, ${r.achievedRate} updates/s achieved`,
      `  commit -> view (feed receipt):  ${f(r.fromCommitTs)}   goal p99 < ${GOAL_P99_MS} ms: ${r.goal.met ? 'met' : 'MISSED'}`,
      `  client ack -> view:             ${f(r.fromClientAck)}`,
      `  legs (${r.legs.events} events): commit -> CDC topic ${f(r.legs.commitToTopic)}; topic -> view ${f(r.legs.topicToView)}`,
      `  processor histogram: ${r.processorHistogram.count} events, p50 ~${r.processorHistogram.p50Ms} ms, p99 ~${r.processorHistogram.p99Ms} ms (bucket estimate)`,
      `  processor batch time: ${r.processorBatchApply.count} batches, mean ${r.processorBatchApply.meanMs} ms, p50 ~${r.processorBatchApply.p50Ms} ms, p99 ~${r.processorBatchApply.p99Ms} ms`,
      ...Object.entries(r.processorCalls).map(([k, c]) => `    ${k}: ${c.calls} calls, mean ${c.meanMs} ms, p50 ${c.p50Ms} ms, p99 ${c.p99Ms} ms`),
      `  CPU during the load: machine ${r.cpu.machineBusy === null ? '?' : `${Math.round(r.cpu.machineBusy * 100)}%`} busy, this process ${r.cpu.processCores} cores`,
    ].join('\n') + '\n',
  );
} else process.stdout.write(`commit -> Redis view: failed: ${failure?.message ?? 'unknown'}\n`);
process.exit(failure || (result.matched as number) !== (result.acked as number) ? 1 : 0);
