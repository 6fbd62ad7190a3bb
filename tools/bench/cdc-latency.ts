/**
 * Benchmark: Postgres commit -> change event readable on the CDC topic, at a steady update rate.
 * Each update is its own transaction on one of BENCH_ROWS rows; the consumer matches events by
 * (sku, version). Two latencies per event:
 *   - fromCommitTs: consumer receipt minus Postgres' commit timestamp (source.ts_ms);
 *   - fromClientAck: consumer receipt minus the moment the client saw COMMIT return.
 * With --compare-default-poll the same load runs a second time with Debezium's default
 * poll.interval.ms (500) and the ratio is reported; the tuned value is restored afterwards.
 *
 * Usage: npm run bench:cdc-latency -- [--rate 500] [--seconds 20] [--compare-default-poll] [--json]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { TOPICS } from '../../lib/topics.ts';
import { loadConnectorSpecs, registerConnectors, waitConnectorsRunning } from '../stack/connectors.ts';
import { connectSecretsDir } from '../stack/stack.ts';
import { decodeStockChange } from '../../stream-processors/domain/stock-change.ts';
import { machine, parseArgs } from './args.ts';
import { consumeFromEnd } from './lib/kafka-topics.ts';
import { progress } from './lib/run.ts';
import { stats, type Stats } from './lib/stats.ts';
import { seedBenchRows, steadyUpdates, waitUntil } from './lib/update-load.ts';

const args = parseArgs(process.argv.slice(2));
const rate = args.get('rate', 500);
const seconds = args.get('seconds', 20);
const rows = 1000;
const config = loadConfigOrExit();

interface Phase {
  pollIntervalMs: number;
  updates: number;
  received: number;
  achievedRate: number;
  fromCommitTs: Stats;
  fromClientAck: Stats;
  /** Commit timestamp -> Debezium's processing timestamp (envelope ts_ms): the capture leg. */
  debeziumCapture: Stats;
  /** Debezium's processing timestamp -> consumer receipt: Connect producer, broker, consumer. */
  captureToConsumer: Stats;
}

const pool = new pg.Pool({ connectionString: config.pg.url, max: 16 });
await seedBenchRows(pool, 'BENCH-', rows);

const kafka = createKafka({ connection: config.kafka, clientId: 'bench-cdc' });

async function phase(pollIntervalMs: number): Promise<Phase> {
  const acks = new Map<string, number>();
  const commitTs = new Map<string, number>();
  const capturedTs = new Map<string, number>();
  const received = new Map<string, number>();
  const consumer = await consumeFromEnd(kafka, TOPICS.cdcStockLevels, `bench-cdc-${Date.now()}`, async ({ message }) => {
    const now = Date.now();
    const d = decodeStockChange(message.value?.toString() ?? null);
    if (!d.ok || !('change' in d) || !d.change.row || !d.change.sku.startsWith('BENCH-')) return;
    const id = `${d.change.sku}/${d.change.row.version}`;
    received.set(id, now);
    commitTs.set(id, d.change.commitTs);
    capturedTs.set(id, d.change.capturedTs);
  });
  await sleep(2000); // let the group settle before load starts

  const load = await steadyUpdates(pool, {
    rate,
    seconds,
    rows,
    skuOf: (i) => `BENCH-${String(i + 1).padStart(5, '0')}`,
    onAck: (sku, version, at) => void acks.set(`${sku}/${version}`, at),
    onReport: (sent, total) => progress(`  poll ${pollIntervalMs} ms: ${sent}/${total} updates sent, ${received.size} events received`),
  });
  if (load.errors) throw load.firstError; // a failed update ends the benchmark
  const elapsed = load.elapsed;
  await waitUntil(() => ![...acks.keys()].some((k) => !received.has(k)), 30_000);
  await consumer.disconnect();

  const fromCommit: number[] = [];
  const fromAck: number[] = [];
  const capture: number[] = [];
  const kafkaLeg: number[] = [];
  for (const [id, ack] of acks) {
    const r = received.get(id);
    if (r === undefined) continue;
    fromAck.push(r - ack);
    fromCommit.push(r - commitTs.get(id)!);
    capture.push(capturedTs.get(id)! - commitTs.get(id)!);
    kafkaLeg.push(r - capturedTs.get(id)!);
  }
  return {
    pollIntervalMs,
    updates: acks.size,
    received: fromAck.length,
    achievedRate: Math.round(acks.size / elapsed),
    fromCommitTs: stats(fromCommit),
    fromClientAck: stats(fromAck),
    debeziumCapture: stats(capture),
    captureToConsumer: stats(kafkaLeg),
  };
}

async function setPollInterval(ms: number): Promise<void> {
  const specs = loadConnectorSpecs().filter((s) => s.name === 'invsync-stock-cdc');
  const patched = specs.map((s) => ({ ...s, config: { ...s.config, 'poll.interval.ms': String(ms) } }));
  await registerConnectors(config.connect.url, patched, connectSecretsDir(config));
  await sleep(3000); // the task restarts with the new configuration
  await waitConnectorsRunning(config.connect.url, ['invsync-stock-cdc'], 60_000);
}

const tunedPoll = Number(loadConnectorSpecs().find((s) => s.name === 'invsync-stock-cdc')!.config['poll.interval.ms']);
const phases: Phase[] = [];
progress(`commit -> CDC topic at ${rate} updates/s for ${seconds}s (tuned poll.interval.ms=${tunedPoll})`);
phases.push(await phase(tunedPoll));
if (args.has('compare-default-poll')) {
  try {
    await setPollInterval(500);
    progress('same load with Debezium default poll.interval.ms=500');
    phases.push(await phase(500));
  } finally {
    await registerConnectors(config.connect.url, loadConnectorSpecs(), connectSecretsDir(config));
    await waitConnectorsRunning(config.connect.url, ['invsync-stock-cdc'], 60_000);
  }
}
await pool.end();

const tuned = phases[0]!;
const result = {
  benchmark: 'cdc-latency',
  machine: machine(),
  rate,
  seconds,
  phases,
  ...(phases[1] ? { p99RatioDefaultOverTuned: +(phases[1].fromCommitTs.p99 / tuned.fromCommitTs.p99).toFixed(2) } : {}),
};
if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  for (const p of phases) {
    progress(
      `poll ${p.pollIntervalMs} ms: ${p.received}/${p.updates} events at ${p.achievedRate}/s; commit -> topic p50 ${p.fromCommitTs.p50} ms, p99 ${p.fromCommitTs.p99} ms (client ack -> topic p50 ${p.fromClientAck.p50}, p99 ${p.fromClientAck.p99})`,
    );
  }
}
process.exit(tuned.received === tuned.updates ? 0 : 1);
