/**
 * The inbound connector: consumes `stock.adjustments` (Avro `StockAdjustment`, key = sku) in
 * batches, applies them to Postgres exactly once (adapters/pg-adjustments.ts: one transaction
 * per chunk of a batch, the adjustment ids recorded in it), dead-letters what cannot be applied,
 * and only then commits the batch's offsets. A crash anywhere re-delivers the uncommitted batch;
 * its applied adjustments are then duplicates and change nothing.
 *
 * Dead letters use the platform's DLQ format (lib/contracts/dlq.ts), with `dlq.adjustment.id`
 * when the message decoded; reason codes `undecodable`, `invalid`, `key_mismatch`, `apply_failed`
 * and the refusal codes of domain/decide.ts. Postgres, Kafka or the registry being unreachable
 * is not the message's fault: the batch fails and is retried. The loop itself (guards, split on
 * a data error, dead letters, commit, lag) is lib/kafka-stage.ts.
 *
 * Owns: the connector's work per message and per chunk (decode, validate, apply). Must not:
 * contain the adjustment rules (domain/) or SQL (adapters/).
 */
import type { Kafka } from 'kafkajs';
import { DLQ_REASONS } from '../../lib/contracts/dlq.ts';
import { PoisonMessageError, startKafkaStage, type BatchDone, type RunningStage, type StageWork } from '../../lib/kafka-stage.ts';
import type { Logger } from '../../lib/logger.ts';
import { TOPICS } from '../../lib/topics.ts';
import type { StockAdjustment } from '../../schemas/generated/avro-types.ts';
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
  /** The group session (KAFKA_SESSION_TIMEOUT_MS); the stage's default when left out. */
  sessionTimeoutMs?: number;
}

export type InboundConsumer = RunningStage;

/** An outcome of the store, with when its transaction committed. */
type Outcome = ApplyOutcome & { committedAt: number };

/** Where an adjustment came from, as recorded in `applied_adjustments.received_via`. */
export function kafkaVia(topic: string, partition: number, offset: string): string {
  return `kafka:${topic}/${partition}@${offset}`;
}

/** The key must be the SKU: per-SKU order (and transfer atomicity per SKU) rests on it. */
export function keyMismatch(key: Buffer | null, a: StockAdjustment): string | null {
  const k = key?.toString('utf8') ?? null;
  return k === a.sku ? null : `the message key (${k === null ? 'none' : JSON.stringify(k)}) must be the SKU (${JSON.stringify(a.sku)})`;
}

/**
 * The decoded record as an adjustment keyed by its SKU; a PoisonMessageError (`invalid`,
 * `key_mismatch`) when it is not one.
 */
export function checkAdjustment(value: unknown, key: Buffer | null): StockAdjustment {
  const v = validateAdjustment(value, { strict: false });
  if (!v.ok) {
    const id = (value as { adjustmentId?: unknown } | null)?.adjustmentId;
    throw new PoisonMessageError(DLQ_REASONS.invalid, `${v.field}: ${v.message}`, { adjustmentId: typeof id === 'string' ? id : undefined });
  }
  const mismatch = keyMismatch(key, v.value);
  if (mismatch) throw new PoisonMessageError(DLQ_REASONS.keyMismatch, mismatch, { adjustmentId: v.value.adjustmentId, tags: { kind: v.value.kind } });
  return v.value;
}

/**
 * Applies a chunk. The store classifies its own failures (adapters/pg-adjustments.ts): Postgres
 * refusing the data is an InvalidDataError (not retriable: the stage dead-letters it as
 * `apply_failed` instead of holding up the partition), a lost connection is retriable.
 */
async function applyClassified(store: AdjustmentStore, items: ApplyItem[]): Promise<Outcome[]> {
  const outcomes: ApplyOutcome[] = await store.apply(items);
  const committedAt = Date.now();
  return outcomes.map((o) => ({ ...o, committedAt }));
}

export async function startInboundConsumer(deps: InboundConsumerDeps): Promise<InboundConsumer> {
  const topic = deps.topics?.adjustments ?? TOPICS.stockAdjustments;
  return startKafkaStage({
    kafka: deps.kafka,
    groupId: deps.groupId,
    topic,
    dlqTopic: deps.topics?.dlq ?? TOPICS.dlq,
    fromBeginning: deps.fromBeginning,
    log: deps.logger.child({ component: 'inbound-adjustments', group: deps.groupId }),
    metrics: deps.metrics,
    partitionsConsumedConcurrently: deps.partitionsConsumedConcurrently,
    ...(deps.sessionTimeoutMs ? { sessionTimeoutMs: deps.sessionTimeoutMs } : {}),
    work: adjustmentWork(deps),
  });
}

function adjustmentWork(deps: InboundConsumerDeps): StageWork<ApplyItem, Outcome> {
  return {
    reasons: { decode: DLQ_REASONS.undecodable, apply: DLQ_REASONS.adjustmentApplyFailed },
    chunkSize: deps.batchMax,
    // The decoder throws SchemaError (dead-lettered) or TransientError (the registry is
    // unreachable: the batch is retried).
    async decode(message, ctx) {
      const { value } = await deps.decoder.decode(message.value);
      return { adjustment: checkAdjustment(value, message.key), via: kafkaVia(ctx.topic, ctx.partition, message.offset) };
    },
    apply: (items) => applyClassified(deps.store, items),
    describe: (item) => ({ adjustmentId: item.adjustment.adjustmentId, tags: { kind: item.adjustment.kind } }),
    async complete(done, ctx) {
      for (const { message, result: o } of done.applied) {
        if (o.outcome !== 'refused') continue;
        ctx.deadLetter({ code: o.code, detail: o.message, message, adjustmentId: o.adjustment.adjustmentId, tags: { kind: o.adjustment.kind } });
      }
    },
    committed: (done) => countOutcomes(deps.metrics, done),
  };
}

function countOutcomes(m: InboundMetrics, done: BatchDone<ApplyItem, Outcome>): Record<string, number> {
  const n = { applied: 0, duplicate: 0 };
  for (const { message, result: o } of done.applied) {
    if (o.outcome === 'refused') continue;
    n[o.outcome]++;
    m.adjustments.inc({ outcome: o.outcome, kind: o.adjustment.kind });
    if (o.outcome === 'applied') m.produceToCommit.observe(Math.max(0, o.committedAt - Number(message.timestamp)) / 1000);
  }
  for (const d of done.deadLetters) m.adjustments.inc({ outcome: 'dlq', kind: d.tags?.kind ?? 'unknown' });
  return n;
}
