/**
 * One processor fuzz run: the stock processor as a child process (private consumer group and
 * Redis prefix, starting at the topic's end), a storm of CDC messages from gen-cdc.ts produced to
 * the real CDC topic, then the checks: the processor is alive, every partition moved past the
 * storm (a probe change produced to each partition afterwards reaches the views), and the dead
 * letters of this run equal the poison messages injected.
 *
 * The movement relay (connectors/ledger/relay.ts) follows the same topic in its own group, so the
 * same storm is its input too: a connectors child (private groups, starting at the end) runs
 * beside the processor, and the checks are the same — alive, past the storm (a real stock change
 * made in Postgres afterwards comes out on `stock.movements`), and its dead letters equal the
 * messages its decoder refuses.
 */
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../../lib/redis.ts';
import { loadConfig } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createRedis } from '../../lib/redis.ts';
import { TOPICS } from '../../lib/topics.ts';
import { watchTopic } from '../helpers.ts';
import { child, fuzzNames, seedSkus } from './platform.ts';
import { countDlq } from './dlq.ts';
import { cdcCase, cdcEvent } from './gen-cdc.ts';
import { Rng } from './rng.ts';
import type { Violation } from './report.ts';
import type { TargetRun } from './target-gateway.ts';

export interface ProcessorStats {
  cases: number;
  poison: number;
  valid: number;
  tombstones: number;
  dlq: number;
  dlqReasons: Record<string, number>;
  restarts: number;
  /** Messages the movement relay's decoder refuses, and the relay's dead letters of this run. */
  relayPoison: number;
  relayDlq: number;
}

async function partitionCount(kafka: ReturnType<typeof createKafka>, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  return offsets.length;
}

async function waitFor(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await sleep(200);
  }
  return probe();
}

async function viewsHave(redis: RedisClient, prefix: string, skus: string[]): Promise<boolean> {
  const present = await Promise.all(skus.map((s) => redis.exists(`${prefix}:{${s}}`)));
  return present.every((p) => p === 1);
}

export async function runProcessorTarget(o: { seed: number; cases: number; first?: number; deadline?: number; log?: (line: string) => void }): Promise<TargetRun<ProcessorStats>> {
  const log = o.log ?? (() => undefined);
  const config = loadConfig(process.env);
  const names = fuzzNames('pr');
  const kafka = createKafka({ connection: config.kafka, clientId: `${names.id}-fuzz` });
  const redis = createRedis(config.redis);
  const producer = kafka.producer();
  const processor = child('processor', names);
  const connectors = child('connectors', names, { HOUSEKEEPING_INTERVAL_S: '0' });
  const group = `${names.id}-processor`;
  const pool = new pg.Pool({ connectionString: config.pg.url, max: 2 });
  const violations: Violation[] = [];
  const stats: ProcessorStats = { cases: 0, poison: 0, valid: 0, tombstones: 0, dlq: 0, dlqReasons: {}, restarts: 0, relayPoison: 0, relayDlq: 0 };
  const fail = (problem: string, detail?: string, index = -1, input = `${stats.cases} CDC messages`) =>
    violations.push({ target: 'processor', seed: o.seed, index, kind: 'cdc', input, problem, ...(detail ? { detail } : {}) });
  const dlq = await countDlq(kafka, { id: names.id, group });
  const relayDlq = await countDlq(kafka, { id: names.id, group: `${names.id}-movements` });
  const movements = await watchTopic(kafka, TOPICS.stockMovements, { binary: true });
  /** A real stock change in Postgres; true once its movement is on stock.movements. */
  let moves = 0;
  const relayProbe = async (timeoutMs: number): Promise<boolean> => {
    const sku = names.skus[0]!;
    const seen = movements.messages.filter((m) => m.key === sku).length;
    await pool.query(`UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = $1 AND location_id = $2`, [sku, names.locations[0]]);
    moves++;
    return waitFor(async () => movements.messages.filter((m) => m.key === sku).length > seen, timeoutMs);
  };
  try {
    await producer.connect();
    await seedSkus(pool, names);
    await Promise.all([processor.start(), connectors.start()]);
    let relayLive = false;
    for (let round = 0; round < 10 && !relayLive; round++) relayLive = await relayProbe(3000);
    if (!relayLive) throw new Error('the movement relay never published a probe change');
    const partitions = await partitionCount(kafka, TOPICS.cdcStockLevels);
    const r = new Rng(o.seed);
    let version = 1_000_000;
    // Probes: one valid change per partition; once each is in the views, that partition is live (or, after the storm, past it).
    const probe = async (round: string) => {
      const skus: string[] = [];
      for (let p = 0; p < partitions; p++) {
        const sku = `${names.id}-probe-${round}-${p}`;
        skus.push(sku);
        await producer.send({ topic: TOPICS.cdcStockLevels, acks: -1, messages: [{ partition: p, key: JSON.stringify({ sku }), value: JSON.stringify(cdcEvent(r, sku, 'L1', version++)) }] });
      }
      return skus;
    };
    // The processor starts at the topic's end: send probes until a round arrives.
    let live = false;
    for (let round = 0; round < 30 && !live; round++) live = await waitFor(async () => viewsHave(redis, names.prefix, await probe(`start${round}`)), 2000);
    if (!live) throw new Error('the processor never applied a probe change');
    log(`processor pid ${processor.pid} live on ${partitions} partitions, prefix ${names.prefix}`);

    const ctx = { id: names.id, skus: [0, 1, 2].map((i) => `${names.id}-sku-${i}`), locations: ['L1', 'L2'], version: () => version++ };
    const first = o.first ?? 0;
    const sent: Array<{ index: number; label: string; partition: number | undefined; expect: string }> = [];
    for (let i = first; i < first + o.cases; i++) {
      if (o.deadline !== undefined && Date.now() > o.deadline) break;
      const c = cdcCase(o.seed, i, ctx);
      stats.cases++;
      if (c.expect === 'dlq') stats.poison++;
      if (c.relayExpect === 'dlq') stats.relayPoison++;
      else if (c.expect === 'apply') stats.valid++;
      else stats.tombstones++;
      // Big values one by one; the rest in small batches.
      await producer.send({ topic: TOPICS.cdcStockLevels, acks: -1, messages: [{ key: c.key, value: c.value }] });
      sent.push({ index: c.index, label: c.label, partition: undefined, expect: c.expect });
      if (!processor.alive) {
        const exit = processor.crashes.at(-1);
        fail(`processor exited (code ${exit?.code}, signal ${exit?.signal}); suspect`, exit?.tail.slice(-10).join('\n'), c.index, c.label);
        await processor.start();
        stats.restarts++;
      }
      if (!connectors.alive) {
        const exit = connectors.crashes.at(-1);
        fail(`connectors (movement relay) exited (code ${exit?.code}, signal ${exit?.signal}); suspect`, exit?.tail.slice(-10).join('\n'), c.index, c.label);
        await connectors.start();
        stats.restarts++;
      }
      if (stats.cases % 100 === 0) log(`processor: ${stats.cases} messages (${stats.poison} poison), dead letters so far ${dlq.count()}`);
    }

    const probes = await probe('after');
    const through = await waitFor(async () => processor.alive && (await viewsHave(redis, names.prefix, probes)), 60_000);
    if (!processor.alive) {
      const exit = processor.crashes.at(-1);
      fail(`processor exited (code ${exit?.code}, signal ${exit?.signal}) during the storm`, exit?.tail.slice(-10).join('\n'));
    } else if (!through) {
      const missing: number[] = [];
      for (const [p, s] of probes.entries()) if ((await redis.exists(`${names.prefix}:{${s}}`)) === 0) missing.push(p);
      fail(`partitions ${missing.join(', ')} stopped: a change produced after the storm never reached the views (a message the processor can neither apply nor dead-letter holds them)`, processor.logTail(6).join('\n'));
    }
    if (!connectors.alive) {
      const exit = connectors.crashes.at(-1);
      fail(`connectors (movement relay) exited (code ${exit?.code}, signal ${exit?.signal}) during the storm`, exit?.tail.slice(-10).join('\n'));
    } else if (!(await relayProbe(60_000))) {
      fail('the movement relay stopped: a stock change made after the storm never reached stock.movements', connectors.logTail(6).join('\n'));
    }
    // Dead letters are produced before a batch's offsets are committed, so they are all in by now; a moment more shows extras.
    await waitFor(async () => dlq.count() >= stats.poison && relayDlq.count() >= stats.relayPoison, 10_000);
    await sleep(1000);
    stats.dlq = dlq.count();
    stats.dlqReasons = dlq.reasons();
    if (stats.dlq !== stats.poison) fail(`dead letters ${stats.dlq} != poison messages injected ${stats.poison}`, JSON.stringify(stats.dlqReasons));
    stats.relayDlq = relayDlq.count();
    if (stats.relayDlq !== stats.relayPoison) fail(`movement relay dead letters ${stats.relayDlq} != messages its decoder refuses ${stats.relayPoison}`, JSON.stringify(relayDlq.reasons()));
    log(`processor: ${stats.cases} messages, ${stats.poison} poison, ${stats.dlq} dead letters; relay: ${stats.relayPoison} refused, ${stats.relayDlq} dead letters, ${moves} probe movements`);
    return { stats, violations };
  } finally {
    await Promise.all([processor.stop(), connectors.stop()]);
    await relayDlq.stop();
    await movements.stop();
    await pool.end();
    await dlq.stop();
    await producer.disconnect();
    redis.disconnect();
  }
}
