/** Kafka client factory (kafkajs), with kafkajs' own logs routed into pino (levels: lib/kafka-log.ts). */
import fs from 'node:fs';
import { Kafka, logLevel, type Consumer, type KafkaConfig, type LogEntry, type Producer, type SASLOptions } from 'kafkajs';
import type { KafkaConnection } from './config.ts';
import { kafkaLogLevel } from './kafka-log.ts';
import type { Logger } from './logger.ts';

/** kafkajs' `ssl` and `sasl` options for a connection (TLS with its CA file, SASL PLAIN/SCRAM). */
export function kafkaSecurity(connection: KafkaConnection): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (connection.tls) {
    out.ssl = connection.tls.caFile ? { ca: [fs.readFileSync(connection.tls.caFile, 'utf8')] } : true;
  }
  if (connection.sasl) {
    const { mechanism, username, password } = connection.sasl;
    out.sasl = { mechanism, username, password } as SASLOptions;
  }
  return out;
}

/** `connection` is `config.kafka`: brokers plus the TLS/SASL settings every client must use. */
export function createKafka(options: {
  connection: KafkaConnection;
  clientId: string;
  logger?: Logger;
  overrides?: Partial<KafkaConfig>;
}): Kafka {
  const log = options.logger?.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: options.clientId,
    brokers: options.connection.brokers,
    ...kafkaSecurity(options.connection),
    connectionTimeout: 3000,
    requestTimeout: 30000,
    // kafkajs backs off to 30 s between attempts by default; after a broker restart that is up
    // to 30 s of a client waiting on a broker that is already back. At most 2 s here.
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 8 },
    logLevel: log ? logLevel.WARN : logLevel.NOTHING,
    logCreator: () => (entry: LogEntry) => {
      if (!log) return;
      const { message, ...rest } = entry.log;
      // Routine start-up notices and retriable start-up answers go to debug (lib/kafka-log.ts).
      log[kafkaLogLevel(entry.level, message)]({ namespace: entry.namespace, ...rest }, message);
    },
    ...options.overrides,
  });
}

/** What a group member knows about its membership: see `trackMembership`. */
export interface Membership {
  /** Resolves once the consumer has joined its group (first assignment). */
  joined: Promise<{ memberId: string; partitions: number[] }>;
  /** Joined and not crashed since. */
  isReady(): boolean;
  /** Partitions of `topic` assigned now, ascending. */
  partitions(): number[];
  /** Marks the member as stopping (not ready). */
  leave(): void;
}

/** Follows a kafkajs consumer's group membership for readiness and logs joins and crashes. */
export function trackMembership(consumer: Consumer, topic: string, log: Logger): Membership {
  let ready = false;
  let assigned: number[] = [];
  let resolveJoined!: (v: { memberId: string; partitions: number[] }) => void;
  const joined = new Promise<{ memberId: string; partitions: number[] }>((r) => (resolveJoined = r));
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const partitions = e.payload.memberAssignment[topic] ?? [];
    assigned = [...partitions].sort((a, b) => a - b);
    ready = true;
    log.info({ memberId: e.payload.memberId, partitions }, 'joined group');
    resolveJoined({ memberId: e.payload.memberId, partitions });
  });
  consumer.on(consumer.events.CRASH, (e) => {
    ready = false;
    log.error({ err: e.payload.error?.message, restart: e.payload.restart }, 'consumer crashed');
    // kafkajs gives up on a consumer after a non-retriable error: the process would live on,
    // ready for nothing, consuming nothing. Crash instead (docs/operations.md, crash policy): the
    // supervisor restarts the process, which resumes from the committed offsets.
    if (e.payload.restart === false) {
      const cause = e.payload.error;
      setImmediate(() => {
        throw new Error(`the consumer of ${topic} stopped and kafkajs will not restart it: ${cause?.message ?? 'unknown error'}`, { cause });
      });
    }
  });
  return {
    joined,
    isReady: () => ready,
    partitions: () => assigned,
    leave: () => {
      ready = false;
    },
  };
}

/**
 * The consume → process → produce pair every stage uses (stock processor, inbound connector):
 * an idempotent producer, a group consumer subscribed to `topic` with the platform's timings (a
 * killed instance's partitions move to the others after 6 s, the broker's smallest allowed
 * session timeout by default; Kafka's default is 45 s; a failed batch is retried at most 2 s
 * after the failure, so a dependency that is back is used again at once), and its membership
 * tracker. Connected and subscribed; the caller runs the consumer.
 */
export async function connectStage(opts: { kafka: Kafka; groupId: string; topic: string; fromBeginning: boolean; log: Logger }): Promise<{
  producer: Producer;
  consumer: Consumer;
  membership: Membership;
}> {
  const producer = opts.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  const consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    maxWaitTimeInMs: 20,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 15 },
  });
  const membership = trackMembership(consumer, opts.topic, opts.log);
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: opts.fromBeginning });
  return { producer, consumer, membership };
}

/**
 * How a stage runs its consumer: batches, offsets resolved by the stage only after its work for a
 * batch is done (applied and published), committed at most once a second, partitions in parallel.
 */
export function stageRunOptions(partitionsConsumedConcurrently = 6) {
  return { eachBatchAutoResolve: false, autoCommit: true, autoCommitInterval: 1000, partitionsConsumedConcurrently } as const;
}
