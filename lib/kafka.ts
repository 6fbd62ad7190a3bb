/**
 * Kafka client factory (kafkajs), with kafkajs' own logs routed into pino (levels:
 * lib/kafka-log.ts). The consume → apply → commit stages are run by lib/kafka-stage.ts.
 */
import fs from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConnection } from './config.ts';
import { kafkaLogLevel } from './kafka-log.ts';
import { keyPartitioner } from './kafka-partitioner.ts';
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
  const kafka = new Kafka({
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
  // Every producer partitions with lib/kafka-partitioner.ts (kafkajs' partitions, computed cheaply)
  // unless its caller names another.
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (config) => producer({ createPartitioner: keyPartitioner, ...config });
  return kafka;
}
