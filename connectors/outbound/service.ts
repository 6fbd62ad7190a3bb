/**
 * Outbound mappings at run time (docs/outbound-mappings.md): for every mapping of the file named
 * by CONNECTOR_MAPPINGS_FILE, a kafkajs consumer in its own group (`<prefix>.<mapping name>`)
 * reads the source topic, decodes each value (Avro through the registry, or JSON), maps it
 * (domain/map-message.ts), produces the mapped records — creating output topics the first time
 * they are named — and only then commits the source offsets. At-least-once: a crash replays the
 * uncommitted tail, which maps to the same records with the same `invsync.dedup-id` headers.
 *
 * A message that cannot be decoded or mapped goes to `inventory.dlq` with the reason and the
 * mapping moves on; the registry or Kafka being unreachable is not the message's fault: the batch
 * fails and kafkajs retries it with backoff.
 *
 * Owns: the consume -> map -> produce -> commit loop of outbound mappings. Must not: contain
 * mapping rules (domain/) or decide anything about other connectors (connectors/service.ts wires
 * this in).
 */
import fs from 'node:fs';
import type { Consumer, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Registry } from 'prom-client';
import { createSchemaRegistry, decodeAvro, loadAvroSchema } from '../../lib/avro-registry.ts';
import { encodeDeadLetter } from '../../lib/contracts/dlq.ts';
import type { Config } from '../../lib/config.ts';
import { ensureTopics } from '../../lib/ensure-topics.ts';
import { ConfigError, errorMessage, SchemaError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { TOPICS, type TopicSpec } from '../../lib/topics.ts';
import { mapMessage, type MappedRecord, type SourceMessage } from './domain/map-message.ts';
import { createOutboundMetrics } from './metrics.ts';
import {
  AVRO_SOURCES,
  avroShape,
  MappingFileError,
  ORDER_EVENT_SHAPE,
  parseMappingFile,
  type Mapping,
  type SourceTopic,
} from './domain/mapping-spec.ts';

export interface OutboundDeps {
  config: Readonly<Config>;
  logger: Logger;
  kafka: Kafka;
  /** Where the sources and the dead letters really are; tests point them at private topics. */
  topics?: Partial<Record<SourceTopic | 'dlq', string>>;
  /** Prometheus registry to report on (the connectors service's); none: no metrics. */
  metricsRegistry?: Registry;
}

export interface MappingStats {
  /** Source messages read. */
  consumed: number;
  /** Mapped records produced. */
  produced: number;
  /** Source messages that mapped to nothing (filtered out, or tombstones). */
  skipped: number;
  /** Source messages sent to the DLQ. */
  deadLettered: number;
}

export interface OutboundMappings {
  /** The running mappings, by name. */
  mappings: string[];
  /** Resolves once every mapping's consumer has joined its group. */
  joined: Promise<void>;
  stats(): Record<string, MappingStats>;
  stop(): Promise<void>;
}

/** Source messages handled per produce + offset commit step within a fetched batch. */
const SLICE = 200;

/** The shapes mapping files are checked against: the Avro schemas and the order event payload. */
function sourceShapes() {
  return {
    'stock.deltas': avroShape(loadAvroSchema('StockDelta')),
    'stock.levels': avroShape(loadAvroSchema('StockLevel')),
    'orders.events': ORDER_EVENT_SHAPE,
  } as const;
}

/**
 * Reads and validates a mapping file. Throws ConfigError with one line naming the file, the
 * mapping and the field, like every other configuration error.
 */
export function loadMappingFile(file: string): Mapping[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err);
    throw new ConfigError(`invalid configuration: CONNECTOR_MAPPINGS_FILE cannot be read (${file}: ${reason})`, { variable: 'CONNECTOR_MAPPINGS_FILE' });
  }
  try {
    return parseMappingFile(text, { file, shapes: sourceShapes(), reservedTopics: Object.values(TOPICS) });
  } catch (err) {
    if (err instanceof MappingFileError) {
      throw new ConfigError(`invalid configuration: CONNECTOR_MAPPINGS_FILE ${err.message}`, { variable: 'CONNECTOR_MAPPINGS_FILE', cause: err });
    }
    throw err;
  }
}

type Decoded = { kind: 'value'; value: unknown } | { kind: 'tombstone' } | { kind: 'bad'; reason: string };

async function decode(source: SourceTopic, message: KafkaMessage, registry: SchemaRegistry): Promise<Decoded> {
  if (message.value === null) return { kind: 'tombstone' };
  if (AVRO_SOURCES.has(source)) {
    try {
      return { kind: 'value', value: await decodeAvro(registry, message.value) };
    } catch (err) {
      // A SchemaError blames the message; anything else (registry unreachable) fails the batch.
      if (err instanceof SchemaError) return { kind: 'bad', reason: `undecodable Avro: ${err.message}` };
      throw err;
    }
  }
  try {
    return { kind: 'value', value: JSON.parse(message.value.toString('utf8')) as unknown };
  } catch (err) {
    return { kind: 'bad', reason: `value is not JSON: ${errorMessage(err)}` };
  }
}

function headerStrings(message: KafkaMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? String(v[v.length - 1] ?? '') : v.toString();
  }
  return out;
}

/** A source message the mapping cannot carry, dead-lettered with `mapping <name>: <why>` (lib/contracts/dlq.ts). */
function deadLetter(message: KafkaMessage, mapping: string, detail: string, source: { topic: string; partition: number }, groupId: string): Message {
  return encodeDeadLetter({ code: `mapping ${mapping}`, detail, topic: source.topic, partition: source.partition, message }, groupId);
}

/**
 * Starts every mapping of CONNECTOR_MAPPINGS_FILE (none when it is unset). A bad file throws
 * ConfigError before anything connects.
 */
export async function startOutboundMappings(deps: OutboundDeps): Promise<OutboundMappings> {
  const { config, kafka } = deps;
  const log = deps.logger.child({ component: 'outbound-mappings' });
  const file = config.outbound.mappingsFile;
  if (file === undefined) {
    log.info('no outbound mappings (CONNECTOR_MAPPINGS_FILE is not set)');
    return { mappings: [], joined: Promise.resolve(), stats: () => ({}), stop: async () => undefined };
  }
  const mappings = loadMappingFile(file);
  const topicOf = (source: SourceTopic): string => deps.topics?.[source] ?? source;
  const dlqTopic = deps.topics?.dlq ?? TOPICS.dlq;
  const reserved = [...new Set([...Object.values(TOPICS), ...Object.values(deps.topics ?? {})])];
  const registry = createSchemaRegistry(config.registry);
  const metrics = deps.metricsRegistry ? createOutboundMetrics(deps.metricsRegistry) : undefined;

  // Output topics: created (with the mapping's partitions / compaction) the first time they are named.
  const known = new Map<string, Promise<void>>();
  const ensureTopic = (topic: string, m: Mapping): Promise<void> => {
    let p = known.get(topic);
    if (!p) {
      const spec: TopicSpec = { topic, partitions: m.partitions, config: m.compact ? { 'cleanup.policy': 'compact' } : {} };
      p = ensureTopics(kafka, [spec], config.topics).then((created) => {
        if (created.length) log.info({ topic, mapping: m.name, partitions: m.partitions, compact: m.compact }, 'created output topic');
      });
      p.catch(() => known.delete(topic)); // retried with the batch
      known.set(topic, p);
    }
    return p;
  };
  for (const m of mappings) if (m.output.isStatic) await ensureTopic(m.output.text, m);

  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();

  const stats: Record<string, MappingStats> = {};
  const consumers: Consumer[] = [];
  const joins: Array<Promise<void>> = [];
  try {
    for (const m of mappings) {
      const groupId = `${config.outbound.groupIdPrefix}.${m.name}`;
      const source = topicOf(m.source);
      const mlog = log.child({ mapping: m.name, group: groupId });
      const s: MappingStats = { consumed: 0, produced: 0, skipped: 0, deadLettered: 0 };
      stats[m.name] = s;
      const routed = new Set<string>();
      const consumer = kafka.consumer({
        groupId,
        maxWaitTimeInMs: 100,
        sessionTimeout: 30_000,
        heartbeatInterval: 3000,
        retry: { initialRetryTime: 200, maxRetryTime: 10_000, retries: 10 },
      });
      consumers.push(consumer);
      joins.push(
        new Promise<void>((resolve) => {
          consumer.on(consumer.events.GROUP_JOIN, (e) => {
            mlog.info({ partitions: e.payload.memberAssignment[source] ?? [] }, 'joined group');
            resolve();
          });
        }),
      );
      consumer.on(consumer.events.CRASH, (e) => {
        mlog.error({ err: e.payload.error?.message, restart: e.payload.restart }, 'consumer crashed');
      });
      await consumer.connect();
      await consumer.subscribe({ topic: source, fromBeginning: m.startFrom === 'earliest' });
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: true,
        autoCommitInterval: 1000,
        partitionsConsumedConcurrently: 3,
        eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
          const from = { topic: batch.topic, partition: batch.partition };
          for (let start = 0; start < batch.messages.length; start += SLICE) {
            if (!isRunning() || isStale()) return;
            const slice = batch.messages.slice(start, start + SLICE);
            const out: MappedRecord[] = [];
            const dlq: Message[] = [];
            let skipped = 0; // counted only once the slice is produced (a failed slice is retried)
            for (const message of slice) {
              const decoded = await decode(m.source, message, registry);
              if (decoded.kind === 'tombstone') {
                skipped++;
                continue;
              }
              if (decoded.kind === 'bad') {
                dlq.push(deadLetter(message, m.name, decoded.reason, from, groupId));
                mlog.warn({ partition: batch.partition, offset: message.offset, reason: decoded.reason }, 'message to DLQ');
                continue;
              }
              const msg: SourceMessage = {
                topic: batch.topic,
                partition: batch.partition,
                offset: message.offset,
                timestamp: message.timestamp,
                key: message.key?.toString('utf8') ?? null,
                headers: headerStrings(message),
                value: decoded.value,
                raw: message.value,
              };
              const mapped = mapMessage(m, msg, reserved);
              const problems = [...mapped.problems];
              for (const r of mapped.records) {
                if (!routed.has(r.topic) && routed.size >= m.maxTopics) {
                  problems.push(`output topic ${JSON.stringify(r.topic)} would exceed maxTopics (${m.maxTopics}) for this mapping`);
                  continue;
                }
                routed.add(r.topic);
                out.push(r);
              }
              if (problems.length) {
                dlq.push(deadLetter(message, m.name, problems.join('; '), from, groupId));
                mlog.warn({ partition: batch.partition, offset: message.offset, reason: problems.join('; ') }, 'message to DLQ');
              } else if (mapped.records.length === 0) skipped++;
            }
            for (const t of new Set(out.map((r) => r.topic))) await ensureTopic(t, m);
            const byTopic = new Map<string, Message[]>();
            for (const r of out) {
              const list = byTopic.get(r.topic) ?? [];
              list.push({ key: r.key, value: r.value, headers: r.headers });
              byTopic.set(r.topic, list);
            }
            if (dlq.length) byTopic.set(dlqTopic, [...(byTopic.get(dlqTopic) ?? []), ...dlq]);
            if (byTopic.size) {
              await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
            }
            const last = slice[slice.length - 1]!.offset;
            resolveOffset(last);
            s.consumed += slice.length;
            s.produced += out.length;
            s.skipped += skipped;
            s.deadLettered += dlq.length;
            if (metrics) {
              metrics.records.inc({ mapping: m.name }, out.length);
              metrics.messages.inc({ mapping: m.name, outcome: 'mapped' }, slice.length - skipped - dlq.length);
              metrics.messages.inc({ mapping: m.name, outcome: 'skipped' }, skipped);
              metrics.messages.inc({ mapping: m.name, outcome: 'dlq' }, dlq.length);
              metrics.lag.set({ mapping: m.name, partition: String(batch.partition) }, Math.max(0, Number(batch.highWatermark) - Number(last) - 1));
            }
            await heartbeat();
            await commitOffsetsIfNecessary();
          }
        },
      });
      mlog.info({ source, output: m.output.text, format: m.format, startFrom: m.startFrom }, 'outbound mapping started');
    }
  } catch (err) {
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
    await producer.disconnect().catch(() => undefined);
    throw err;
  }

  return {
    mappings: mappings.map((m) => m.name),
    joined: Promise.all(joins).then(() => undefined),
    stats: () => structuredClone(stats),
    async stop() {
      // Disconnecting a consumer finishes its batch and commits the offsets it resolved.
      await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
      await producer.disconnect().catch(() => undefined);
    },
  };
}
