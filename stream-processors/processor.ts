/**
 * The stock processor: consumes Debezium's CDC topic for stock_levels in batches, applies each
 * change to the Redis views (version-guarded, pipelined), then publishes the effects —
 * `stock.deltas` and `stock.levels` (Avro), the gateway feed stream — and only then commits the
 * batch's offsets. At-least-once delivery plus idempotent apply gives effectively-once views;
 * effects of duplicates are re-emitted, so a crash between apply and publish loses nothing
 * (consumers de-duplicate by version).
 *
 * An event that cannot be decoded or applied goes to `inventory.dlq` with the reason and its
 * source topic/partition/offset, and the partition moves on. Redis or Kafka being unreachable is
 * not the event's fault: the batch fails and kafkajs retries it with backoff.
 *
 * Owns: the consume -> apply -> publish -> commit loop. Must not: contain fold rules (domain/)
 * or know Redis key layouts (adapters/redis-views.ts).
 */
import type { Kafka, KafkaMessage, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import { SchemaError } from '../lib/errors.ts';
import { connectStage, stageRunOptions } from '../lib/kafka.ts';
import type { Logger } from '../lib/logger.ts';
import { TOPICS } from '../lib/topics.ts';
import type { StockDelta, StockLevel } from '../schemas/generated/avro-types.ts';
import { RedisViews, type ApplyResult } from './adapters/redis-views.ts';
import { toStockDelta, toStockLevel } from './domain/effects.ts';
import { fromStockChange, type RowChange, type SkuSummary } from './domain/fold.ts';
import { decodeStockChange } from './domain/stock-change.ts';
import type { ProcessorMetrics } from './metrics.ts';

export interface Encoder<T> {
  encode(value: T): Promise<Buffer>;
}

export interface ProcessorDeps {
  kafka: Kafka;
  redis: Redis;
  codecs: { stockDelta: Encoder<StockDelta>; stockLevel: Encoder<StockLevel> };
  logger: Logger;
  metrics: ProcessorMetrics;
  groupId: string;
  fromBeginning: boolean;
  prefix: string;
  feedMaxLen: number;
  /** Defaults to the platform's topics; tests point them elsewhere. */
  topics?: { cdc?: string; deltas?: string; levels?: string; dlq?: string };
  partitionsConsumedConcurrently?: number;
}

export interface StockProcessor {
  /** Resolves once the consumer has joined its group and has partitions assigned. */
  joined: Promise<{ memberId: string; partitions: number[] }>;
  isReady(): boolean;
  /** The CDC partitions currently assigned to this instance. */
  partitions(): number[];
  stop(): Promise<void>;
}

export interface DlqRecord {
  reason: string;
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/** The DLQ message: original key and value untouched, the why and where in headers. */
export function dlqMessage(r: DlqRecord, processor: string, now = new Date()): Message {
  return {
    key: r.message.key,
    value: r.message.value,
    headers: {
      'dlq.reason': r.reason,
      'dlq.source.topic': r.topic,
      'dlq.source.partition': String(r.partition),
      'dlq.source.offset': r.message.offset,
      'dlq.processor': processor,
      'dlq.failed.at': now.toISOString(),
    },
  };
}

/**
 * Effects are emitted for an applied change, and for a duplicate whose effects may never have
 * been published (the process died between apply and publish, or a rebuild applied it): its
 * version is above the SKU's published mark and above what this batch already emitted.
 * Per SKU, CDC order is version order (migration 0005), so these comparisons are exact.
 */
export function shouldEmit(r: Pick<ApplyResult, 'outcome' | 'published' | 'change'>, emittedInBatch: number): boolean {
  if (r.outcome === 'applied') return true;
  return r.outcome === 'duplicate' && r.change.version > r.published && r.change.version > emittedInBatch;
}

/** Redis replies that blame the data (a script error), as opposed to the connection. */
function isDataError(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /^(ERR|WRONGTYPE)|user_script|unexpected apply-row/.test(msg);
}

export async function startStockProcessor(deps: ProcessorDeps): Promise<StockProcessor> {
  const topics = {
    cdc: deps.topics?.cdc ?? TOPICS.cdcStockLevels,
    deltas: deps.topics?.deltas ?? TOPICS.stockDeltas,
    levels: deps.topics?.levels ?? TOPICS.stockLevels,
    dlq: deps.topics?.dlq ?? TOPICS.dlq,
  };
  const log = deps.logger.child({ component: 'stock-processor', group: deps.groupId });
  const views = new RedisViews({ redis: deps.redis, prefix: deps.prefix });
  const m = deps.metrics;
  const { producer, consumer, membership } = await connectStage({ kafka: deps.kafka, groupId: deps.groupId, topic: topics.cdc, fromBeginning: deps.fromBeginning, log });

  /**
   * The batch's effects. The gateway feed is written first, in parallel with the Kafka send: a
   * gateway (and its clients) gets the change as soon as the view has it, without waiting for
   * the topic's acknowledgements. The published marks follow both. A failure anywhere retries the
   * batch; effects written before the failure are written again (feed readers and Kafka
   * consumers drop what they already have by version).
   */
  async function publish(results: ApplyResult[], dlq: DlqRecord[], dead: (r: ApplyResult, reason: string) => void): Promise<void> {
    const emittedResults: ApplyResult[] = [];
    const emitted = new Map<string, number>();
    for (const r of results) {
      if (!shouldEmit(r, emitted.get(r.summary.sku) ?? -1)) continue;
      emitted.set(r.summary.sku, Math.max(r.summary.version, emitted.get(r.summary.sku) ?? -1));
      emittedResults.push(r);
    }
    const feedWritten = views.appendFeed(
      emittedResults.map((r) => r.summary),
      deps.feedMaxLen,
    );
    const sent = (async () => {
      const deltas: Message[] = [];
      const lastLevel = new Map<string, SkuSummary>();
      // A state the topic's schema cannot carry (e.g. a sum of locations beyond Avro's int, found
      // by the fuzzer) is that event's fault: it goes to the DLQ with the reason, the view keeps
      // the state, and the rest of the batch is published. Anything else fails the batch (retried).
      const unencodable = (r: ApplyResult, err: unknown): void => {
        if (!(err instanceof SchemaError)) throw err;
        dead(r, `effect not encodable: ${err.message}`);
      };
      for (const r of emittedResults) {
        const delta = toStockDelta(r.summary, r.previousAvailable, r.change);
        try {
          deltas.push({ key: r.summary.sku, value: await deps.codecs.stockDelta.encode(delta) });
        } catch (err) {
          unencodable(r, err);
        }
        lastLevel.set(r.summary.sku, r.summary); // compacted topic: the batch's last state per SKU suffices
      }
      const levels: Message[] = [];
      for (const s of lastLevel.values()) {
        try {
          levels.push({ key: s.sku, value: await deps.codecs.stockLevel.encode(toStockLevel(s)) });
        } catch (err) {
          if (!(err instanceof SchemaError)) throw err;
          deps.logger.warn({ sku: s.sku, err: err.message }, 'stock level not encodable: not published (its delta went to the DLQ)');
        }
      }

      const topicMessages = [
        { topic: topics.deltas, messages: deltas },
        { topic: topics.levels, messages: levels },
        { topic: topics.dlq, messages: dlq.map((d) => dlqMessage(d, deps.groupId)) },
      ].filter((t) => t.messages.length > 0);
      if (topicMessages.length) await producer.sendBatch({ topicMessages, acks: -1 });
    })();
    // Both settle before the marks (and before an error is rethrown), so nothing is left running.
    const [feedResult, sendResult] = await Promise.allSettled([feedWritten, sent]);
    if (feedResult.status === 'rejected') throw feedResult.reason;
    if (sendResult.status === 'rejected') throw sendResult.reason;
    await views.markPublished(emitted);
  }

  await consumer.run({
    ...stageRunOptions(deps.partitionsConsumedConcurrently),
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      if (!isRunning() || isStale() || batch.messages.length === 0) return;
      const started = performance.now();
      const plog = log.child({ topic: batch.topic, partition: batch.partition });
      const changes: RowChange[] = [];
      const origin: KafkaMessage[] = [];
      const dlq: DlqRecord[] = [];
      let tombstones = 0;
      for (const message of batch.messages) {
        const decoded = decodeStockChange(message.value?.toString('utf8') ?? null, message.key?.toString('utf8') ?? null);
        if (!decoded.ok) {
          dlq.push({ reason: `undecodable CDC event: ${decoded.reason}`, topic: batch.topic, partition: batch.partition, message });
          plog.warn({ offset: message.offset, reason: decoded.reason }, 'event to DLQ');
          continue;
        }
        if (!('change' in decoded)) {
          tombstones++; // the delete event before it carried the change
          continue;
        }
        changes.push(fromStockChange(decoded.change));
        origin.push(message);
      }

      // Apply. A failed pipeline (connection) throws: the batch is retried. A script error for one
      // event is that event's fault: it goes to the DLQ and the rest of the batch proceeds.
      let results: ApplyResult[];
      try {
        results = await views.applyBatch(changes);
      } catch (err) {
        if (!isDataError(err)) throw err;
        results = [];
        for (let i = 0; i < changes.length; i++) {
          try {
            results.push(...(await views.applyBatch([changes[i]!])));
          } catch (one) {
            if (!isDataError(one)) throw one;
            dlq.push({ reason: `apply failed: ${(one as Error).message}`, topic: batch.topic, partition: batch.partition, message: origin[i]! });
          }
        }
      }
      await heartbeat();
      const originOf = new Map(changes.map((c, i) => [c, origin[i]!] as const));
      await publish(results, dlq, (r, reason) => {
        plog.warn({ sku: r.change.sku, version: r.change.version, reason }, 'event to DLQ');
        dlq.push({ reason, topic: batch.topic, partition: batch.partition, message: originOf.get(r.change)! });
      });

      const last = batch.messages[batch.messages.length - 1]!;
      resolveOffset(last.offset);
      await commitOffsetsIfNecessary();
      await heartbeat();

      const now = Date.now();
      let applied = 0;
      let duplicate = 0;
      let stale = 0;
      for (const r of results) {
        if (r.outcome === 'applied') {
          applied++;
          m.commitToView.observe(Math.max(0, now - r.change.commitTs) / 1000);
        } else if (r.outcome === 'duplicate') duplicate++;
        else stale++;
      }
      m.events.inc({ outcome: 'applied' }, applied);
      m.events.inc({ outcome: 'duplicate' }, duplicate);
      m.events.inc({ outcome: 'stale' }, stale);
      m.events.inc({ outcome: 'tombstone' }, tombstones);
      m.events.inc({ outcome: 'dlq' }, dlq.length);
      for (const d of dlq) m.dlq.inc({ reason: d.reason.split(':')[0] ?? 'unknown' });
      m.batchApply.observe((performance.now() - started) / 1000);
      const lag = Number(batch.highWatermark) - Number(last.offset) - 1;
      m.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, lag));
      plog.debug({ offset: last.offset, size: batch.messages.length, applied, duplicate, stale, dlq: dlq.length, lag }, 'batch applied');
    },
  });

  return {
    joined: membership.joined,
    isReady: membership.isReady,
    partitions: membership.partitions,
    async stop() {
      membership.leave();
      await consumer.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
    },
  };
}
