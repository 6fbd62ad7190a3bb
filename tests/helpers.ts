/**
 * Shared helpers for integration tests: the configuration the global setup established, unique
 * names per test, and a topic watcher that starts at the current end of a topic (so a test sees
 * only what happens after it starts) and waits for a matching message.
 */
import { randomBytes } from 'node:crypto';
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../lib/config.ts';
import { decodeDeadLetter, type DlqRecord } from '../lib/contracts/dlq.ts';
import { errorMessage } from '../lib/errors.ts';
import { createKafka } from '../lib/kafka.ts';
import { createPgPool, inTransaction } from '../lib/pg.ts';
import { createRedis } from '../lib/redis.ts';

export function testConfig(): Readonly<Config> {
  return loadConfig(process.env);
}

export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export function testKafka(config: Config): Kafka {
  return createKafka({ connection: config.kafka, clientId: unique('test') });
}

export interface Received {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  receivedAt: number;
}

export interface TopicWatcher {
  messages: Received[];
  waitFor(predicate: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  stop(): Promise<void>;
}

/** A watched DLQ message read through the dead-letter contract (lib/contracts/dlq.ts); throws when it is none. */
export function deadLetterOf(m: Received): DlqRecord {
  const d = decodeDeadLetter(m);
  if (d === null) throw new Error(`not a dead letter (offset ${m.offset}): headers ${JSON.stringify(m.headers)}`);
  return d;
}

/** Whether a watched message is a dead letter of `topic` at `partition`/`offset`. */
export function isDeadLetterOf(m: Received, source: { topic?: string; partition: number; offset: string }): boolean {
  const d = decodeDeadLetter(m);
  return d !== null && (source.topic === undefined || d.source.topic === source.topic) && d.source.partition === source.partition && d.source.offset === source.offset;
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (v !== undefined) out[k] = v.toString();
  return out;
}

/**
 * Watches `topic` from its current end (or from the beginning when `fromBeginning`). The topic
 * must exist unless `fromBeginning` is set. `binary` keeps values byte-exact (for Avro).
 */
export async function watchTopic(kafka: Kafka, topic: string, { fromBeginning = false, binary = false } = {}): Promise<TopicWatcher> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = fromBeginning ? [] : await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const groupId = unique('watch');
  const consumer: Consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50 });
  const messages: Received[] = [];
  const waiters = new Set<() => void>();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      messages.push({
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        // binary: latin1 keeps every byte, so Buffer.from(value, 'binary') restores Avro payloads.
        value: message.value?.toString(binary ? 'binary' : 'utf8') ?? null,
        headers: headersToStrings(message.headers),
        receivedAt: Date.now(),
      });
      for (const w of waiters) w();
    },
  });
  for (const p of ends) consumer.seek({ topic, partition: p.partition, offset: p.high });
  return {
    messages,
    waitFor(predicate, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = messages.find(predicate);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching message on ${topic} within ${timeoutMs} ms (${messages.length} seen)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      await consumer.disconnect();
      await deleteGroups(kafka, [groupId]);
    },
  };
}

/** Deletes consumer groups; one that is gone already or still has members is left alone. */
export async function deleteGroups(kafka: Kafka, groups: string[]): Promise<void> {
  if (!groups.length) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteGroups(groups).catch(() => undefined); // kafkajs rejects when any one fails
  } finally {
    await admin.disconnect();
  }
}

/**
 * What a suite created on the shared stack, for `cleanUp` in its afterAll: tests share one stack
 * (docs/testing.md), so each suite removes its own names and nothing else.
 */
export interface Leftovers {
  /** Every Redis key under `<prefix>:`. */
  redisPrefixes?: string[];
  /** These SKUs' stock rows, row locks, applied adjustments and orders (with lines and reservations). */
  skus?: string[];
  /** The same, for every SKU starting with one of these. */
  skuPrefixes?: string[];
  /** Consumer groups (deleted once their members have left). */
  groups?: string[];
  /** Private topics. */
  topics?: string[];
}

/** Removes what `what` names from Redis, Postgres and Kafka; throws if a part could not be removed. */
export async function cleanUp(config: Config, what: Leftovers): Promise<void> {
  const failures: string[] = [];
  const prefixes = (what.redisPrefixes ?? []).filter((p) => p.length >= 4); // never a shared short prefix
  if (prefixes.length) {
    const redis = createRedis(config.redis);
    try {
      for (const prefix of prefixes) {
        const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}:*`;
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await redis.unlink(...keys);
        } while (cursor !== '0');
      }
    } catch (e) {
      failures.push(`redis: ${errorMessage(e)}`);
    } finally {
      redis.disconnect();
    }
  }
  const skus = what.skus ?? [];
  const likes = (what.skuPrefixes ?? []).filter((p) => p.length >= 4).map((p) => `${p.replace(/[\\%_]/g, '\\$&')}%`);
  if (skus.length || likes.length) {
    const pool = createPgPool(config.pg.url, { max: 1, application: 'invsync-test-cleanup' });
    const mine = (column: string) => `(${column} = ANY($1::text[]) OR ${column} LIKE ANY($2::text[]))`;
    try {
      await inTransaction(pool, async (client) => {
        await client.query(`DELETE FROM orders WHERE id IN (SELECT order_id FROM order_lines WHERE ${mine('sku')})`, [skus, likes]);
        await client.query(`DELETE FROM applied_adjustments WHERE ${mine('sku')}`, [skus, likes]);
        await client.query(`DELETE FROM stock_levels WHERE ${mine('sku')}`, [skus, likes]);
        // The ledger's rows of the test's SKUs (the delete above just added its own).
        await client.query(`DELETE FROM stock_movements WHERE ${mine('sku')}`, [skus, likes]);
        await client.query(`DELETE FROM stock_movement_baselines WHERE ${mine('sku')}`, [skus, likes]);
        await client.query(`DELETE FROM stock_sku_locks WHERE ${mine('sku')}`, [skus, likes]);
      });
    } catch (e) {
      failures.push(`postgres: ${errorMessage(e)}`);
    } finally {
      await pool.end();
    }
  }
  if (what.groups?.length || what.topics?.length) {
    const kafka = testKafka(config);
    try {
      await deleteGroups(kafka, what.groups ?? []);
      if (what.topics?.length) {
        const admin = kafka.admin();
        await admin.connect();
        try {
          await admin.deleteTopics({ topics: what.topics });
        } finally {
          await admin.disconnect();
        }
      }
    } catch (e) {
      failures.push(`kafka: ${errorMessage(e)}`);
    }
  }
  if (failures.length) throw new Error(`test clean-up incomplete: ${failures.join('; ')}`);
}
