/**
 * The inbound connector: consumes `stock.adjustments` (Avro `StockAdjustment`, key = sku) in
 * batches, applies them to Postgres exactly once (adapters/pg-adjustments.ts: one transaction
 * per chunk of a batch, the adjustment ids recorded in it), dead-letters what cannot be applied,
 * and only then commits the batch's offsets. A crash anywhere re-delivers the uncommitted batch;
 * its applied adjustments are then duplicates and change nothing.
 *
 * Dead letters follow the stream processor's convention (stream-processors/processor.ts,
 * `dlqMessage`): original key and value untouched, headers `dlq.reason` (`<code>: <message>`),
 * `dlq.source.topic`, `dlq.source.partition`, `dlq.source.offset`, `dlq.processor` (the consumer
 * group), `dlq.failed.at`, plus `dlq.adjustment.id` when the message decoded. Postgres, Kafka or
 * the registry being unreachable is not the message's fault: the batch fails and is retried.
 *
 * Owns: the consume -> decode -> apply -> dead-letter -> commit loop. Must not: contain the
 * adjustment rules (domain/) or SQL (adapters/).
 */
import type { Kafka, KafkaMessage, Message } from 'kafkajs';
import { errorMessage, SchemaError } from '../../lib/errors.ts';
import { connectStage, stageRunOptions } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import { TOPICS } from '../../lib/topics.ts';
import type { StockAdjustment } from '../../schemas/generated/avro-types.ts';
import { dlqMessage } from '../../stream-processors/processor.ts';
import type { AvroRecordDecoder } from './adapters/avro-decoder.ts';
import type { AdjustmentStore, ApplyItem, ApplyOutcome } from './adapters/pg-adjustments.ts';
import { validateAdjustment } from './domain/adjustment.ts';
import type { InboundMetrics } from './metrics.ts';

export interface InboundConsumerDeps {
  kafka: Kafka;
  store: AdjustmentStore;
  decoder: AvroRecordDecoder;
  logger: Logger;
  metrics: InboundMetrics;
  groupId: string;
  fromBeginning: boolean;
  /** Most adjustments applied in one Postgres transaction. */
  batchMax: number;
  /** Defaults to the platform's topics; tests and benchmarks point them elsewhere. */
  topics?: { adjustments?: string; dlq?: string };
  partitionsConsumedConcurrently?: number;
}

export interface InboundConsumer {
  /** Resolves once the consumer has joined its group and has partitions assigned. */
  joined: Promise<{ memberId: string; partitions: number[] }>;
  isReady(): boolean;
  stop(): Promise<void>;
}

/** Why a message was dead-lettered: a stable code (the metric label) and a sentence. */
export interface DeadLetter {
  code: string;
  message: string;
  kafka: KafkaMessage;
  adjustmentId?: string;
  kind?: string;
}

/** `dlq.reason`: `<code>: <message>`, like the stream processor's reasons (the code is the part before the colon). */
export function dlqReason(code: string, message: string): string {
  return `${code}: ${message}`;
}

/** Where an adjustment came from, as recorded in `applied_adjustments.received_via`. */
export function kafkaVia(topic: string, partition: number, offset: string): string {
  return `kafka:${topic}/${partition}@${offset}`;
}

/**
 * Postgres refusing the data itself (SQLSTATE class 22 data exception, 23 integrity violation
 * other than the unique violations the store retries): retrying cannot help, so the adjustment is
 * dead-lettered instead of holding up its partition forever. Validation should make this
 * unreachable; it is the safety net.
 */
export function isDataError(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  return /^2[23]/.test(code) && code !== '23505';
}

/** The key must be the SKU: per-SKU order (and transfer atomicity per SKU) rests on it. */
export function keyMismatch(key: Buffer | null, a: StockAdjustment): string | null {
  const k = key?.toString('utf8') ?? null;
  return k === a.sku ? null : `the message key (${k === null ? 'none' : JSON.stringify(k)}) must be the SKU (${JSON.stringify(a.sku)})`;
}

export async function startInboundConsumer(deps: InboundConsumerDeps): Promise<InboundConsumer> {
  const topics = { adjustments: deps.topics?.adjustments ?? TOPICS.stockAdjustments, dlq: deps.topics?.dlq ?? TOPICS.dlq };
  const log = deps.logger.child({ component: 'inbound-adjustments', group: deps.groupId });
  const m = deps.metrics;
  const { producer, consumer, membership } = await connectStage({ kafka: deps.kafka, groupId: deps.groupId, topic: topics.adjustments, fromBeginning: deps.fromBeginning, log });

  await consumer.run({
    ...stageRunOptions(deps.partitionsConsumedConcurrently),
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      if (!isRunning() || isStale() || batch.messages.length === 0) return;
      const started = performance.now();
      const plog = log.child({ topic: batch.topic, partition: batch.partition });
      const dead: DeadLetter[] = [];
      const valid: Array<{ kafka: KafkaMessage; adjustment: StockAdjustment }> = [];

      for (const message of batch.messages) {
        let value: unknown;
        try {
          ({ value } = await deps.decoder.decode(message.value));
        } catch (err) {
          if (!(err instanceof SchemaError)) throw err; // registry unreachable: retry the batch
          dead.push({ code: 'undecodable', message: errorMessage(err), kafka: message });
          continue;
        }
        const v = validateAdjustment(value, { strict: false });
        if (!v.ok) {
          const id = (value as { adjustmentId?: unknown } | null)?.adjustmentId;
          dead.push({ code: 'invalid', message: `${v.field}: ${v.message}`, kafka: message, ...(typeof id === 'string' ? { adjustmentId: id } : {}) });
          continue;
        }
        const mismatch = keyMismatch(message.key, v.value);
        if (mismatch) {
          dead.push({ code: 'key_mismatch', message: mismatch, kafka: message, adjustmentId: v.value.adjustmentId, kind: v.value.kind });
          continue;
        }
        valid.push({ kafka: message, adjustment: v.value });
      }

      let applied = 0;
      let duplicate = 0;
      for (let from = 0; from < valid.length; from += deps.batchMax) {
        const chunk = valid.slice(from, from + deps.batchMax);
        const items: ApplyItem[] = chunk.map((c) => ({ adjustment: c.adjustment, via: kafkaVia(batch.topic, batch.partition, c.kafka.offset) }));
        let outcomes: Array<ApplyOutcome | { outcome: 'failed'; error: string }>;
        try {
          outcomes = await deps.store.apply(items);
        } catch (err) {
          if (!isDataError(err)) throw err; // Postgres unreachable, ...: retry the batch
          plog.error({ err: errorMessage(err) }, 'Postgres refused a chunk; applying it one by one');
          outcomes = [];
          for (const item of items) {
            try {
              outcomes.push(...(await deps.store.apply([item])));
            } catch (one) {
              if (!isDataError(one)) throw one;
              outcomes.push({ outcome: 'failed', error: errorMessage(one) });
            }
          }
        }
        const committedAt = Date.now();
        for (const [i, o] of outcomes.entries()) {
          const kafka = chunk[i]!.kafka;
          if (o.outcome === 'failed') {
            dead.push({ code: 'apply_failed', message: o.error, kafka, adjustmentId: chunk[i]!.adjustment.adjustmentId, kind: chunk[i]!.adjustment.kind });
            continue;
          }
          if (o.outcome === 'refused') {
            dead.push({ code: o.code, message: o.message, kafka, adjustmentId: o.adjustment.adjustmentId, kind: o.adjustment.kind });
            continue;
          }
          m.adjustments.inc({ outcome: o.outcome, kind: o.adjustment.kind });
          if (o.outcome === 'applied') {
            applied++;
            m.produceToCommit.observe(Math.max(0, committedAt - Number(kafka.timestamp)) / 1000);
          } else duplicate++;
        }
        await heartbeat();
      }

      if (dead.length > 0) {
        dead.sort((a, b) => Number(a.kafka.offset) - Number(b.kafka.offset));
        const messages: Message[] = dead.map((d) => {
          const msg = dlqMessage({ reason: dlqReason(d.code, d.message), topic: batch.topic, partition: batch.partition, message: d.kafka }, deps.groupId);
          return d.adjustmentId === undefined ? msg : { ...msg, headers: { ...msg.headers, 'dlq.adjustment.id': d.adjustmentId } };
        });
        await producer.send({ topic: topics.dlq, messages, acks: -1 });
        for (const d of dead) {
          m.dlq.inc({ reason: d.code });
          m.adjustments.inc({ outcome: 'dlq', kind: d.kind ?? 'unknown' });
          plog.warn({ offset: d.kafka.offset, reason: d.code, adjustmentId: d.adjustmentId, detail: d.message }, 'adjustment to DLQ');
        }
      }

      // Only now — stock committed, dead letters acknowledged — may the offsets move.
      const last = batch.messages[batch.messages.length - 1]!;
      resolveOffset(last.offset);
      await commitOffsetsIfNecessary();
      await heartbeat();

      m.batchApply.observe((performance.now() - started) / 1000);
      const lag = Number(batch.highWatermark) - Number(last.offset) - 1;
      m.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, lag));
      plog.debug({ offset: last.offset, size: batch.messages.length, applied, duplicate, dlq: dead.length, lag }, 'batch applied');
    },
  });

  return {
    joined: membership.joined,
    isReady: membership.isReady,
    async stop() {
      membership.leave();
      await consumer.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
    },
  };
}
