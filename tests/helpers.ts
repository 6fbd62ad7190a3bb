/**
 * Shared helpers for integration tests: the configuration the global setup established, unique
 * names per test, and a topic watcher that starts at the current end of a topic (so a test sees
 * only what happens after it starts) and waits for a matching message.
 */
import { randomBytes } from 'node:crypto';
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../lib/config.ts';
import { createKafka } from '../lib/kafka.ts';

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
  const consumer: Consumer = kafka.consumer({ groupId: unique('watch'), maxWaitTimeInMs: 50 });
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
    },
  };
}
