/**
 * Benchmark: inbound adjustments applied per second, end to end from a Kafka topic to the
 * Postgres commit, with latency, at a steady rate and in a burst.
 *
 * The connector runs as a child process (this script with `--role consumer`): the inbound
 * consumer exactly as `npm run connectors` runs it (connectors/inbound: Avro decode through the
 * registry, batched apply, one transaction per chunk of CONNECTOR_INBOUND_BATCH_MAX, DLQ), on a
 * private topic of 6 partitions (a private DLQ topic, a private group). Its AdjustmentStore is
 * wrapped to report, per applied adjustment, the time `apply()` returned — right after COMMIT.
 *
 * Load (this process): Avro `StockAdjustment`s keyed by SKU over --rows bench SKUs `BENCHA-…` at
 * two bench locations, kinds rotating RECEIPT, PICK, RECEIPT, TRANSFER, RETURN, DAMAGE, PICK,
 * COUNT (quantities 1–5; the rows hold about a million units, so nothing is refused).
 *   - steady: --rate adjustments/s for --seconds s, sent every 10 ms as they fall due;
 *   - burst:  --burst adjustments encoded beforehand, then produced as fast as Kafka takes them.
 * Latency per adjustment: commit time reported by the child minus the moment this process handed
 * the message to the producer (same machine, same clock). Applied/s: adjustments / (last commit −
 * first send) of the phase.
 *
 * Usage: npm run bench:adjustments -- [--rate 1000] [--seconds 15] [--burst 20000] [--rows 1000] [--json]
 */
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { Producer } from 'kafkajs';
import { createSchemaRegistry, loadAvroSchema, registerStockSchemas } from '../../lib/avro-registry.ts';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createLogger } from '../../lib/logger.ts';
import { createPgPool } from '../../lib/pg.ts';
import { AvroRecordDecoder } from '../../connectors/inbound/adapters/avro-decoder.ts';
import { AdjustmentStore } from '../../connectors/inbound/adapters/pg-adjustments.ts';
import { startInboundConsumer } from '../../connectors/inbound/consumer.ts';
import { createInboundMetrics } from '../../connectors/inbound/metrics.ts';
import type { AdjustmentKind, StockAdjustment } from '../../schemas/generated/avro-types.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, spawnNode, stopChild, type Child } from './lib/children.ts';
import { createPrivateTopics, deletePrivateTopicsAndGroups } from './lib/kafka-topics.ts';
import { progress, runId } from './lib/run.ts';
import { stats, type Stats } from './lib/stats.ts';

const SKU_PREFIX = 'BENCHA-';
const LOCATIONS = ['BENCHA-L1', 'BENCHA-L2'] as const;
const KINDS: AdjustmentKind[] = ['RECEIPT', 'PICK', 'RECEIPT', 'TRANSFER', 'RETURN', 'DAMAGE', 'PICK', 'COUNT'];
const skuOf = (i: number) => `${SKU_PREFIX}${String(i + 1).padStart(5, '0')}`;

// ---------------------------------------------------------------------------------------------
// --role consumer: the connector under test

async function consumerMain(argv: string[]): Promise<void> {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const config = loadConfigOrExit();
  const logger = createLogger({ level: 'warn', name: 'bench-adjustments-consumer' });
  const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const pool = createPgPool(config.pg.url, { max: config.inbound.pgPool, application: 'invsync-bench-adjustments' });
  const store = new AdjustmentStore({ pool });
  let buffer: Array<[string, number]> = [];
  const apply = store.apply.bind(store);
  store.apply = async (items) => {
    const outcomes = await apply(items);
    const now = Date.now();
    for (const o of outcomes) if (o.outcome === 'applied') buffer.push([o.adjustment.adjustmentId, now]);
    return outcomes;
  };
  const metrics = createInboundMetrics({ defaults: false });
  const consumer = await startInboundConsumer({
    kafka: createKafka({ connection: config.kafka, clientId: `bench-adjustments-consumer-${process.pid}`, logger }),
    store,
    decoder: new AvroRecordDecoder({ registry: createSchemaRegistry(config.registry.url), readerSchema: loadAvroSchema('StockAdjustment') }),
    logger,
    metrics,
    groupId: get('group')!,
    fromBeginning: true,
    batchMax: config.inbound.batchMax,
    topics: { adjustments: get('topic')!, dlq: get('dlq')! },
  });
  await consumer.joined;
  out({ type: 'ready', batchMax: config.inbound.batchMax, pgPool: config.inbound.pgPool });
  const flush = async () => {
    if (buffer.length) out({ type: 'applied', items: buffer });
    buffer = [];
    const m = (await metrics.adjustments.get()).values;
    const count = (outcome: string) => m.filter((v) => v.labels.outcome === outcome).reduce((a, v) => a + v.value, 0);
    out({ type: 'counts', applied: count('applied'), duplicate: count('duplicate'), dlq: count('dlq'), retries: (await metrics.retries.get()).values[0]?.value ?? 0 });
  };
  const timer = setInterval(() => void flush(), 100);
  const exit = async () => {
    clearInterval(timer);
    await consumer.stop();
    await flush();
    await pool.end().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void exit());
  readline.createInterface({ input: process.stdin }).on('close', () => void exit());
}

// ---------------------------------------------------------------------------------------------
// the benchmark

interface PhaseResult {
  adjustments: number;
  /** Rate at which this process handed messages to the producer. */
  sentPerSecond: number;
  /** Adjustments / (last commit - first send). */
  appliedPerSecond: number;
  /** Send -> Postgres commit, ms. */
  latencyMs: Stats & { p90: number };
  unapplied: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rate = args.get('rate', 1000);
  const seconds = args.get('seconds', 15);
  const burst = Math.round(args.get('burst', 20_000));
  const rows = Math.round(args.get('rows', 1000));
  const config = loadConfigOrExit();
  const id = runId();
  const topic = `bench-adj-${id}`;
  const dlq = `bench-adj-dlq-${id}`;
  const groupId = `bench-adj-${id}`;
  const kafka = createKafka({ connection: config.kafka, clientId: `bench-adjustments-${id}` });
  const pool = createPgPool(config.pg.url, { max: 4, application: 'invsync-bench-adjustments' });
  const result: Record<string, unknown> = { benchmark: 'adjustments', machine: machine(), steadyRate: rate, steadySeconds: seconds, burstSize: burst, rows, partitions: 6 };
  installHardLimit(600_000, 'error: 10 minutes elapsed; killing children');
  let child: Child | undefined;
  let producer: Producer | undefined;
  let failure: Error | undefined;
  const committed = new Map<string, number>();
  let counts = { applied: 0, duplicate: 0, dlq: 0, retries: 0 };

  try {
    progress(`adjustments: steady ${rate}/s for ${seconds} s, then a burst of ${burst}, over ${rows} SKUs x 2 locations (topic ${topic})`);
    const codecs = await registerStockSchemas(config.registry.url);
    await pool.query(`INSERT INTO locations (location_id, name) SELECT l, 'benchmark' FROM unnest($1::text[]) AS l ON CONFLICT DO NOTHING`, [[...LOCATIONS]]);
    await pool.query(
      `INSERT INTO products (sku, name) SELECT $2 || lpad(n::text, 5, '0'), 'benchmark' FROM generate_series(1, $1::int) n ON CONFLICT DO NOTHING`,
      [rows, SKU_PREFIX],
    );
    await pool.query(
      `INSERT INTO stock_levels (sku, location_id, on_hand)
       SELECT $2 || lpad(n::text, 5, '0'), l, 1000000 FROM generate_series(1, $1::int) n, unnest($3::text[]) AS l
       ON CONFLICT (sku, location_id) DO UPDATE SET on_hand = 1000000 WHERE stock_levels.on_hand < 500000`,
      [rows, SKU_PREFIX, [...LOCATIONS]],
    );
    await createPrivateTopics(kafka, [
      { topic, numPartitions: 6 },
      { topic: dlq, numPartitions: 1 },
    ]);

    let resolveReady!: (v: { batchMax: number; pgPool: number }) => void;
    const ready = new Promise<{ batchMax: number; pgPool: number }>((r) => (resolveReady = r));
    child = spawnNode('connector', 'tools/bench/adjustments.ts', ['--role', 'consumer', '--topic', topic, '--dlq', dlq, '--group', groupId], {
      stdin: true,
      onStdoutLine: (line) => {
        const msg = JSON.parse(line) as { type: string; items?: Array<[string, number]>; batchMax: number; pgPool: number } & typeof counts;
        if (msg.type === 'ready') resolveReady(msg);
        else if (msg.type === 'applied') for (const [a, at] of msg.items!) committed.set(a, at);
        else if (msg.type === 'counts') counts = { applied: msg.applied, duplicate: msg.duplicate, dlq: msg.dlq, retries: msg.retries };
      },
    });
    const settings = await Promise.race([
      ready,
      child.exited.then((c) => {
        throw new Error(`the connector exited (${String(c)}) before it was ready`);
      }),
    ]);
    result.connector = { batchMax: settings.batchMax, pgPool: settings.pgPool };
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();

    let n = 0;
    const make = (phase: string): StockAdjustment => {
      const i = n++;
      const kind = KINDS[i % KINDS.length]!;
      const sku = skuOf(i % rows);
      const from = LOCATIONS[(i >> 3) % 2]!;
      return {
        adjustmentId: `${id}-${phase}-${i}`,
        sku,
        locationId: from,
        kind,
        quantity: kind === 'COUNT' ? 1_000_000 : 1 + (i % 5),
        toLocationId: kind === 'TRANSFER' ? LOCATIONS[((i >> 3) + 1) % 2]! : null,
        occurredAt: Date.now(),
        sourceSystem: `bench-${id}`,
        reference: null,
        expectedOnHand: null,
        expectedVersion: null,
        countedAt: null,
      };
    };

    const finish = async (sent: Map<string, number>, startedAt: number, sentElapsedS: number): Promise<PhaseResult> => {
      const deadline = Date.now() + 120_000;
      while ([...sent.keys()].some((k) => !committed.has(k)) && Date.now() < deadline) await sleep(100);
      const latencies: number[] = [];
      let last = startedAt;
      for (const [k, at] of sent) {
        const c = committed.get(k);
        if (c === undefined) continue;
        latencies.push(c - at);
        last = Math.max(last, c);
      }
      const s = stats(latencies);
      const p90 = latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil(0.9 * latencies.length) - 1))] ?? Number.NaN;
      return {
        adjustments: sent.size,
        sentPerSecond: Math.round(sent.size / sentElapsedS),
        appliedPerSecond: Math.round(latencies.length / ((last - startedAt) / 1000)),
        latencyMs: { ...s, p90 },
        unapplied: sent.size - latencies.length,
      };
    };

    // Warm-up (not measured): the connector's first batches fetch the schema and fill its pool.
    {
      const warm = new Map<string, number>();
      const msgs = await Promise.all(Array.from({ length: 200 }, () => make('warm')).map(async (a) => ({ key: a.sku, value: await codecs.stockAdjustment.encode(a), id: a.adjustmentId })));
      for (const m of msgs) warm.set(m.id, Date.now());
      await producer.send({ topic, messages: msgs.map(({ key, value }) => ({ key, value })), acks: -1 });
      await finish(warm, Date.now(), 1);
    }

    // Steady.
    {
      progress(`  steady: ${rate}/s for ${seconds} s`);
      const sent = new Map<string, number>();
      const total = Math.round(rate * seconds);
      const started = Date.now();
      let lastReport = started;
      const inflight = new Set<Promise<unknown>>();
      while (sent.size < total) {
        const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate));
        const batch: StockAdjustment[] = [];
        while (sent.size + batch.length < due) batch.push(make('steady'));
        if (batch.length) {
          const messages = await Promise.all(batch.map(async (a) => ({ key: a.sku, value: await codecs.stockAdjustment.encode(a) })));
          const now = Date.now();
          for (const a of batch) sent.set(a.adjustmentId, now);
          const p = producer.send({ topic, messages, acks: -1 });
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        if (Date.now() - lastReport >= 2000) {
          lastReport = Date.now();
          progress(`    ${sent.size}/${total} sent, ${[...sent.keys()].filter((k) => committed.has(k)).length} committed`);
        }
        await sleep(10);
      }
      await Promise.all(inflight);
      const sentElapsed = (Date.now() - started) / 1000;
      result.steady = await finish(sent, started, sentElapsed);
    }

    // Burst.
    {
      progress(`  burst: ${burst} adjustments encoded, then produced at once`);
      const adjustments = Array.from({ length: burst }, () => make('burst'));
      const encoded = await Promise.all(adjustments.map(async (a) => ({ key: a.sku, value: await codecs.stockAdjustment.encode(a) })));
      const sent = new Map<string, number>();
      const started = Date.now();
      const sends: Array<Promise<unknown>> = [];
      for (let i = 0; i < burst; i += 1000) {
        const now = Date.now();
        for (const a of adjustments.slice(i, i + 1000)) sent.set(a.adjustmentId, now);
        sends.push(producer.send({ topic, messages: encoded.slice(i, i + 1000), acks: -1 }));
      }
      await Promise.all(sends);
      const sentElapsed = (Date.now() - started) / 1000;
      progress(`    produced in ${sentElapsed.toFixed(2)} s; waiting for the connector`);
      result.burst = await finish(sent, started, sentElapsed);
    }
    await sleep(300); // the connector's last counts
    result.connectorCounts = counts;
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
    result.error = failure.message;
  } finally {
    progress('  cleaning up: connector, topics, consumer group, ledger rows of this run');
    child?.proc.stdin?.end();
    if (child) await Promise.race([child.exited, sleep(10_000)]);
    await stopChild(child, 5000);
    killAllChildren();
    await producer?.disconnect().catch(() => undefined);
    await deletePrivateTopicsAndGroups(kafka, [groupId], [topic, dlq]);
    await pool.query(`DELETE FROM applied_adjustments WHERE source_system = $1`, [`bench-${id}`]).catch((err: Error) => progress(`  cleanup: ${err.message}`));
    await pool.end().catch(() => undefined);
  }

  const phasesOk = ['steady', 'burst'].every((p) => (result[p] as PhaseResult | undefined)?.unapplied === 0);
  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (phasesOk) {
    const f = (p: PhaseResult) =>
      `${p.adjustments} sent at ${p.sentPerSecond}/s, applied ${p.appliedPerSecond}/s; send -> commit p50 ${p.latencyMs.p50} ms, p90 ${p.latencyMs.p90} ms, p99 ${p.latencyMs.p99} ms, max ${p.latencyMs.max} ms`;
    process.stdout.write(`steady: ${f(result.steady as PhaseResult)}\nburst:  ${f(result.burst as PhaseResult)}\n`);
  } else process.stdout.write(`adjustments: failed: ${failure?.message ?? 'some adjustments were not applied'}\n`);
  process.exit(failure || !phasesOk ? 1 : 0);
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const argv = process.argv.slice(2);
  const role = argv.includes('--role') ? argv[argv.indexOf('--role') + 1] : undefined;
  if (role === 'consumer') await consumerMain(argv);
  else await main();
}
