/**
 * The stock processor: consumes Debezium's CDC topic for stock_levels in batches, applies each
 * change to the Redis views (version-guarded, pipelined), then publishes the effects —
 * `stock.deltas`, `stock.levels` and `stock.alerts` (Avro), the gateway feed and alert streams —
 * and only then commits the
 * batch's offsets. At-least-once delivery plus idempotent apply gives effectively-once views;
 * effects of duplicates are re-emitted, so a crash between apply and publish loses nothing
 * (consumers de-duplicate by version).
 *
 * An event that cannot be decoded or applied goes to `inventory.dlq` with the reason and its
 * source topic/partition/offset, and the partition moves on. Redis or Kafka being unreachable is
 * not the event's fault: the batch fails and kafkajs retries it with backoff. The loop itself
 * (guards, split on a data error, dead letters, commit, lag) is lib/kafka-stage.ts.
 *
 * Owns: the processor's work per event and per batch (decode, apply, publish). Must not: contain
 * fold rules (domain/) or know Redis key layouts (adapters/redis-views.ts).
 */
import type { Kafka, Message } from 'kafkajs';
import type { RedisClient } from '../lib/redis.ts';
import { DLQ_REASONS } from '../lib/contracts/dlq.ts';
import { InvalidMessageError, SchemaError } from '../lib/errors.ts';
import { startKafkaStage, type Applied, type BatchContext, type BatchDone, type RunningStage, type StageWork } from '../lib/kafka-stage.ts';
import type { Logger } from '../lib/logger.ts';
import { TOPICS } from '../lib/topics.ts';
import type { StockAlert, StockDelta, StockLevel } from '../schemas/generated/avro-types.ts';
import { RedisAlerts, type AlertStepRequest } from './adapters/redis-alerts.ts';
import { RedisViews, type ApplyResult, type ChannelSource } from './adapters/redis-views.ts';
import { alertInputs, thresholdFor, type ThresholdTable } from './domain/alerts.ts';
import { toStockDelta } from './domain/effects.ts';
import { fromStockChange, type RowChange } from './domain/fold.ts';
import { decodeStockChange } from './domain/stock-change.ts';
import type { ProcessorMetrics } from './metrics.ts';

export interface Encoder<T> {
  encode(value: T): Promise<Buffer>;
}

export interface ProcessorDeps {
  kafka: Kafka;
  redis: RedisClient;
  codecs: { stockDelta: Encoder<StockDelta>; stockLevel: Encoder<StockLevel>; stockAlert?: Encoder<StockAlert> };
  logger: Logger;
  metrics: ProcessorMetrics;
  groupId: string;
  fromBeginning: boolean;
  prefix: string;
  feedMaxLen: number;
  /** Defaults to the platform's topics; tests point them elsewhere. */
  topics?: { cdc?: string; deltas?: string; levels?: string; alerts?: string; dlq?: string };
  /**
   * Stock alerts (docs/stream-processors.md, "Stock alerts"): on when given, with the
   * `stockAlert` codec. `thresholds` returns the table in force (reloaded elsewhere).
   */
  alerts?: { thresholds: () => ThresholdTable; streamMaxLen: number };
  partitionsConsumedConcurrently?: number;
  /** The group session (KAFKA_SESSION_TIMEOUT_MS); the stage's default when left out. */
  sessionTimeoutMs?: number;
  /** The sales-channel configuration (lib/channel-config.ts); none = no channel figures. */
  channels?: ChannelSource;
  /** SKUs whose views hold channel figures of a newer configuration than `channels` (reload, recompute). */
  onChannelsStale?: (skus: string[]) => void;
  /**
   * Apply a SKU's changes of one transaction within a batch in one call and publish one set of
   * effects for them (domain/coalesce.ts; PROCESSOR_COALESCE). Default true.
   */
  coalesce?: boolean;
}

export type StockProcessor = RunningStage;

type Done = BatchDone<RowChange, ApplyResult>;
type AppliedChange = Applied<RowChange, ApplyResult>;

/**
 * Effects are emitted for an applied change, and for a duplicate whose effects may never have
 * been published (the process died between apply and publish, or a rebuild applied it): its
 * version is above the SKU's published mark and above what this batch already emitted.
 * Per SKU, CDC order is version order (migration 0005), so these comparisons are exact.
 * A coalesced group (domain/coalesce.ts) emits once, from its last change, on the group's outcome.
 */
export function shouldEmit(r: Pick<ApplyResult, 'outcome' | 'published' | 'change'> & Partial<Pick<ApplyResult, 'carried' | 'group'>>, emittedInBatch: number): boolean {
  if (r.carried) return false;
  const outcome = r.group?.outcome ?? r.outcome;
  if (outcome === 'applied') return true;
  return outcome === 'duplicate' && r.change.version > r.published && r.change.version > emittedInBatch;
}

/** The batch's results whose effects are emitted, and per SKU the highest version emitted. */
export function selectEmitted<T extends { result: Pick<ApplyResult, 'outcome' | 'published' | 'change' | 'summary'> & Partial<Pick<ApplyResult, 'carried' | 'group'>> }>(applied: T[]): { emitted: T[]; marks: Map<string, number> } {
  const emitted: T[] = [];
  const marks = new Map<string, number>();
  for (const a of applied) {
    const sku = a.result.summary.sku;
    if (!shouldEmit(a.result, marks.get(sku) ?? -1)) continue;
    marks.set(sku, Math.max(a.result.summary.version, marks.get(sku) ?? -1));
    emitted.push(a);
  }
  return { emitted, marks };
}

/** A CDC event as the change to apply; null for a tombstone (the delete event before it carried the change). */
export function decodeCdcMessage(value: Buffer | null, key: Buffer | null): RowChange | null {
  const decoded = decodeStockChange(value?.toString('utf8') ?? null, key?.toString('utf8') ?? null);
  if (!decoded.ok) throw new InvalidMessageError(decoded.reason);
  if (!('change' in decoded)) return null;
  return fromStockChange(decoded.change);
}

export async function startStockProcessor(deps: ProcessorDeps): Promise<StockProcessor> {
  const topics = {
    cdc: deps.topics?.cdc ?? TOPICS.cdcStockLevels,
    deltas: deps.topics?.deltas ?? TOPICS.stockDeltas,
    levels: deps.topics?.levels ?? TOPICS.stockLevels,
    alerts: deps.topics?.alerts ?? TOPICS.stockAlerts,
    dlq: deps.topics?.dlq ?? TOPICS.dlq,
  };
  return startKafkaStage({
    kafka: deps.kafka,
    groupId: deps.groupId,
    topic: topics.cdc,
    dlqTopic: topics.dlq,
    fromBeginning: deps.fromBeginning,
    log: deps.logger.child({ component: 'stock-processor', group: deps.groupId }),
    metrics: deps.metrics,
    partitionsConsumedConcurrently: deps.partitionsConsumedConcurrently,
    ...(deps.sessionTimeoutMs ? { sessionTimeoutMs: deps.sessionTimeoutMs } : {}),
    work: stockWork(deps, topics),
  });
}

type EffectTopics = { deltas: string; levels: string; alerts: string };

function stockWork(deps: ProcessorDeps, topics: EffectTopics): StageWork<RowChange, ApplyResult> {
  const views = new RedisViews({ redis: deps.redis, prefix: deps.prefix, ...(deps.channels ? { channels: deps.channels } : {}) });
  const alerts = deps.alerts && deps.codecs.stockAlert ? new RedisAlerts({ redis: deps.redis, prefix: deps.prefix }) : undefined;
  return {
    reasons: { decode: DLQ_REASONS.cdcUndecodable, apply: DLQ_REASONS.applyFailed },
    decode: (message) => decodeCdcMessage(message.value, message.key),
    // One pipeline for the batch. A script error for one event is that event's fault
    // (adapters/redis-views.ts classifies it): the runner retries the events one by one.
    apply: async (changes) => {
      const results = await views.applyBatch(changes, { coalesce: deps.coalesce ?? true });
      const stale = results.filter((r) => r.channelsStale).map((r) => r.change.sku);
      if (stale.length) deps.onChannelsStale?.([...new Set(stale)]);
      return results;
    },
    complete: (done, ctx) => publish({ deps, views, alerts, topics }, done.applied, ctx),
    committed: (done) => countOutcomes(deps.metrics, done),
  };
}

/**
 * The batch's effects. The gateway feed is written first, before the alert step and in parallel
 * with the Kafka send: a gateway (and its clients) gets the change as soon as the view has it,
 * without waiting for the alert step's round trip or the topic's acknowledgements. The published
 * marks follow all of them. A failure anywhere retries the batch; effects written before the
 * failure are written again (feed readers and Kafka consumers drop what they already have by
 * version). The batch's dead letters go in the same send.
 */
async function publish(env: { deps: ProcessorDeps; views: RedisViews; alerts: RedisAlerts | undefined; topics: EffectTopics }, applied: AppliedChange[], ctx: BatchContext): Promise<void> {
  const { emitted, marks } = selectEmitted(applied);
  const feedWritten = env.views.appendFeed(
    emitted.map((a) => a.result.summary),
    env.deps.feedMaxLen,
    env.deps.channels?.config.version ?? 0,
  );
  // Alerts are stepped before any of them is published: a retry of this batch re-emits the same ones.
  const stepped = env.alerts ? env.alerts.step(alertRequests(applied, env.deps.alerts!.thresholds())) : Promise.resolve([]);
  const effects = (async () => {
    const alerts = await stepped;
    const alertStream = env.alerts?.appendStream(alerts, env.deps.alerts!.streamMaxLen);
    const { deltas, levels } = await encodeEffects(env.deps, emitted, ctx);
    const topicMessages = [
      { topic: env.topics.deltas, messages: deltas },
      { topic: env.topics.levels, messages: levels },
      { topic: env.topics.alerts, messages: await encodeAlerts(env.deps, alerts, ctx) },
      { topic: ctx.dlqTopic, messages: ctx.takeDeadLetters() },
    ].filter((t) => t.messages.length > 0);
    // The stream append and the send both settle before an error is rethrown.
    const [streamResult, sendResult] = await Promise.allSettled([alertStream, topicMessages.length ? ctx.send(topicMessages) : undefined]);
    if (streamResult.status === 'rejected') throw streamResult.reason;
    if (sendResult.status === 'rejected') throw sendResult.reason;
    return alerts;
  })();
  // Both settle before the marks (and before an error is rethrown), so nothing is left running.
  const [feedResult, effectsResult] = await Promise.allSettled([feedWritten, effects]);
  if (feedResult.status === 'rejected') throw feedResult.reason;
  if (effectsResult.status === 'rejected') throw effectsResult.reason;
  const alerts = effectsResult.value;
  await Promise.all([env.views.markPublished(marks), env.alerts?.markPublished(alerts)]);
  for (const a of alerts) env.deps.metrics.alerts.inc({ kind: a.kind });
}

/**
 * One alert step per change that reached the view (applied, or a duplicate: the step is keyed
 * by the SKU version, so a duplicate steps only what a crash left unstepped), on the SKU's state
 * after it, with each channel's threshold.
 */
export function alertRequests(applied: Array<{ result: Pick<ApplyResult, 'outcome' | 'summary'> & Partial<Pick<ApplyResult, 'carried' | 'group'>> }>, table: ThresholdTable): AlertStepRequest[] {
  const out: AlertStepRequest[] = [];
  for (const { result: r } of applied) {
    // A carried change's state is its transaction's, stepped once by the group's last change.
    if (r.carried || (r.group?.outcome ?? r.outcome) === 'stale') continue;
    const s = r.summary;
    out.push({ sku: s.sku, version: s.version, commitTs: s.commitTs, inputs: alertInputs(s).map((i) => ({ ...i, threshold: thresholdFor(table, s.sku, i.channel) })) });
  }
  return out;
}

/** An alert the schema cannot carry is logged and left out (never a retry loop); it is marked published with the others. */
async function encodeAlerts(deps: ProcessorDeps, alerts: StockAlert[], ctx: BatchContext): Promise<Message[]> {
  const out: Message[] = [];
  for (const a of alerts) {
    try {
      out.push({ key: a.sku, value: await deps.codecs.stockAlert!.encode(a), headers: { alertId: a.alertId } });
    } catch (err) {
      if (!(err instanceof SchemaError)) throw err;
      ctx.log.warn({ sku: a.sku, alertId: a.alertId, err: err.message }, 'stock alert not encodable: not published');
    }
  }
  return out;
}

/**
 * A state the topic's schema cannot carry (e.g. a sum of locations beyond Avro's int, found by
 * the fuzzer) is that event's fault: it goes to the DLQ with the reason, the view keeps the
 * state, and the rest of the batch is published. Anything else fails the batch (retried).
 */
async function encodeEffects(deps: ProcessorDeps, emitted: AppliedChange[], ctx: BatchContext): Promise<{ deltas: Message[]; levels: Message[] }> {
  const deltas: Message[] = [];
  const lastLevel = new Map<string, StockLevel>();
  for (const a of emitted) {
    const r = a.result;
    try {
      // One delta per location the change (or its coalesced transaction) touched, each with the
      // SKU's committed state: consumers that filter by location see every location's change.
      for (const loc of r.group.locationIds) deltas.push({ key: r.summary.sku, value: await deps.codecs.stockDelta.encode(toStockDelta(r.summary, r.previousAvailable, loc)) });
    } catch (err) {
      if (!(err instanceof SchemaError)) throw err;
      ctx.deadLetter({ code: DLQ_REASONS.effectNotEncodable, detail: err.message, message: a.message, tags: { sku: r.change.sku, version: String(r.change.version) } });
    }
    lastLevel.set(r.summary.sku, r.summary); // compacted topic: the batch's last state per SKU suffices
  }
  const levels: Message[] = [];
  for (const s of lastLevel.values()) {
    try {
      levels.push({ key: s.sku, value: await deps.codecs.stockLevel.encode(s) });
    } catch (err) {
      if (!(err instanceof SchemaError)) throw err;
      ctx.log.warn({ sku: s.sku, err: err.message }, 'stock level not encodable: not published (its delta went to the DLQ)');
    }
  }
  return { deltas, levels };
}

function countOutcomes(m: ProcessorMetrics, done: Done): Record<string, number> {
  const now = Date.now();
  const n = { applied: 0, duplicate: 0, stale: 0 };
  for (const { result: r } of done.applied) {
    n[r.outcome]++;
    if (r.outcome === 'applied') m.commitToView.observe(Math.max(0, now - r.change.commitTs) / 1000);
  }
  m.events.inc({ outcome: 'applied' }, n.applied);
  m.events.inc({ outcome: 'duplicate' }, n.duplicate);
  m.events.inc({ outcome: 'stale' }, n.stale);
  m.events.inc({ outcome: 'tombstone' }, done.skipped);
  m.events.inc({ outcome: 'dlq' }, done.deadLetters.length);
  return n;
}
