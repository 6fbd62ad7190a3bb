/**
 * A live tail of committed stock changes as they come off the Debezium CDC topic: the platform's
 * first "process", showing that commits flow Postgres -> WAL -> Debezium -> Kafka. It reads with
 * a throw-away consumer group from the end of the topic, so it never disturbs real consumers.
 * At high rates it prints a bounded number of lines per second plus a count of the rest.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from '../lib/logger.ts';
import { rateLimitedWriter } from '../lib/rate-limited-writer.ts';
import { TOPICS } from '../lib/topics.ts';
import { formatChange } from './domain/format.ts';
import { decodeStockChange } from './domain/stock-change.ts';

export interface CdcTail {
  stop(): Promise<void>;
}

export async function startCdcTail(deps: {
  kafka: Kafka;
  logger: Logger;
  write: (line: string) => void;
  maxLinesPerSecond?: number;
  fromBeginning?: boolean;
}): Promise<CdcTail> {
  const { kafka, maxLinesPerSecond = 20 } = deps;
  const log = deps.logger.child({ component: 'cdc-tail', topic: TOPICS.cdcStockLevels });
  const consumer = kafka.consumer({ groupId: `invsync-tail-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 50 });
  const out = rateLimitedWriter(deps.write, maxLinesPerSecond);
  await consumer.connect();
  await consumer.subscribe({ topic: TOPICS.cdcStockLevels, fromBeginning: deps.fromBeginning ?? false });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const now = Date.now();
      const decoded = decodeStockChange(message.value?.toString() ?? null, message.key?.toString() ?? null);
      if (!decoded.ok) {
        log.warn({ partition, offset: message.offset, reason: decoded.reason }, 'undecodable CDC event');
        return;
      }
      if (!('change' in decoded)) return; // tombstone after a delete
      out.write(formatChange(decoded.change, now));
    },
  });
  return {
    async stop() {
      out.close();
      await consumer.disconnect();
    },
  };
}
