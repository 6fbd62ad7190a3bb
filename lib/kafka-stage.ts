/**
 * One Kafka stage runner for every consume → apply → publish → commit stage (the stock processor,
 * the inbound connector). A stage plugs in its per-message work (`decode`), its per-chunk work
 * (`apply`) and what follows (`complete`, `committed`); the runner owns the rest:
 *   - the guards: a batch of a consumer that stops or of a partition that moved is not started;
 *   - poison messages: a data error (`isDataError`) thrown by `decode` dead-letters that message;
 *     one thrown by `apply` makes the runner apply the chunk's items one at a time and
 *     dead-letter only the ones that fail again. Anything else (Redis, Postgres, Kafka or the
 *     registry unreachable: not the message's fault) fails the batch, and kafkajs retries it;
 *   - the DLQ (lib/contracts/dlq.ts), written before the offsets move, so nothing is lost;
 *   - resolveOffset / commit / heartbeat, only once the batch's work is done (at-least-once);
 *   - the stage's metrics shared by all stages: dead letters by reason, batch time, lag;
 *   - the crash policy: a consumer that kafkajs will not restart crashes the process.
 *
 * Must not: know what a message means (the stages do) or read process.env.
 */
import type { Batch, Consumer, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { encodeDeadLetter, type DeadLetter } from './contracts/dlq.ts';
import { errorMessage, InvalidDataError, InvalidMessageError, SchemaError } from './errors.ts';
import type { Logger } from './logger.ts';
import { GroupSender, type TopicMessages } from './group-send.ts';

// ---------------------------------------------------------------------------------------------
// Classification

/**
 * The message's fault: retrying cannot help, so it is dead-lettered. A message that cannot be
 * decoded or does not match its schema (SchemaError, InvalidMessageError) or data the store
 * refused as data (InvalidDataError). Anything else, internal errors and errors of unknown origin
 * included, is not: the batch is retried rather than a message lost for a fault that may be the
 * infrastructure's or the code's.
 */
export function isDataError(err: unknown): boolean {
  return err instanceof SchemaError || err instanceof InvalidDataError;
}

/** A data error that names its own DLQ reason code instead of the phase's default. */
export class PoisonMessageError extends InvalidMessageError {
  readonly reason: string;
  readonly adjustmentId: string | undefined;
  readonly tags: Record<string, string> | undefined;
  constructor(reason: string, message: string, options: { adjustmentId?: string | undefined; tags?: Record<string, string>; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.reason = reason;
    this.adjustmentId = options.adjustmentId;
    this.tags = options.tags;
  }
}

// ---------------------------------------------------------------------------------------------
// Dead letters of one batch

/** A poison message, as the runner records it. */
export interface Poison extends Omit<DeadLetter, 'topic' | 'partition' | 'message'> {
  message: KafkaMessage;
  /** Logged with the dead letter and handed back to the stage (e.g. a metric label). */
  tags?: Record<string, string>;
}

/** The poison message for a data error; `code` unless the error names its own. */
export function poisonOf(message: KafkaMessage, err: unknown, code: string, extra: Pick<Poison, 'adjustmentId' | 'tags'> = {}): Poison {
  if (err instanceof PoisonMessageError) {
    const own = { adjustmentId: err.adjustmentId ?? extra.adjustmentId, tags: err.tags ?? extra.tags };
    return { code: err.reason, detail: err.message, message, ...withoutUndefined(own) };
  }
  return { code, detail: errorMessage(err), message, ...withoutUndefined(extra) };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The dead letters of one batch: recorded as they are found, sent in source-offset order. */
export class DeadLetterBox {
  readonly all: Poison[] = [];
  private sent = 0;

  constructor(private readonly where: { topic: string; partition: number; groupId: string; log?: Logger }) {}

  add(p: Poison): void {
    this.all.push(p);
    this.where.log?.warn({ offset: p.message.offset, reason: p.code, detail: p.detail, ...(p.adjustmentId ? { adjustmentId: p.adjustmentId } : {}), ...p.tags }, 'message to DLQ');
  }

  /** The dead letters not taken yet, as DLQ messages; whoever takes them must send them before the offsets move. */
  take(now = new Date()): Message[] {
    const fresh = this.all.slice(this.sent).sort((a, b) => Number(a.message.offset) - Number(b.message.offset));
    this.sent = this.all.length;
    return fresh.map((p) => encodeDeadLetter({ ...p, topic: this.where.topic, partition: this.where.partition }, this.where.groupId, now));
  }
}

// ---------------------------------------------------------------------------------------------
// Applying with split-to-single on a data error

export interface Decoded<I> {
  message: KafkaMessage;
  item: I;
}

export interface Applied<I, R> extends Decoded<I> {
  result: R;
}

/**
 * Applies `decoded` in one call; when that call blames the data, applies the items one at a time
 * and hands each one that fails again with a data error to `poison`. Any other error is thrown.
 */
export async function applyWithSplit<I, R>(
  decoded: ReadonlyArray<Decoded<I>>,
  apply: (items: I[]) => Promise<R[]>,
  poison: (d: Decoded<I>, err: unknown) => void,
  onSplit?: (err: unknown) => void,
): Promise<Array<Applied<I, R>>> {
  try {
    const results = await apply(decoded.map((d) => d.item));
    return decoded.map((d, i) => ({ ...d, result: results[i]! }));
  } catch (err) {
    if (!isDataError(err)) throw err;
    if (decoded.length === 1) {
      poison(decoded[0]!, err);
      return [];
    }
    onSplit?.(err);
  }
  const out: Array<Applied<I, R>> = [];
  for (const d of decoded) {
    try {
      const [result] = await apply([d.item]);
      out.push({ ...d, result: result! });
    } catch (err) {
      if (!isDataError(err)) throw err;
      poison(d, err);
    }
  }
  return out;
}

/** Messages between the last processed offset and the partition's high watermark. */
export function consumerLag(highWatermark: string, lastOffset: string): number {
  return Math.max(0, Number(highWatermark) - Number(lastOffset) - 1);
}

// ---------------------------------------------------------------------------------------------
// The stage's plug-in points

/** What the stage's work can see and do within one batch. */
export interface BatchContext {
  topic: string;
  partition: number;
  /** A child logger with topic and partition. */
  log: Logger;
  /**
   * Sends topic messages with the stage's producer at acks=all, grouped with the sends of the
   * partitions' other batches in flight (lib/group-send.ts); resolves once acknowledged.
   */
  send(topicMessages: TopicMessages[]): Promise<void>;
  dlqTopic: string;
  /** Dead-letters a message for a reason the stage decided (not an error). */
  deadLetter(p: Poison): void;
  /**
   * The batch's dead letters not yet sent, as DLQ messages, for a stage that sends them with its
   * own output (one sendBatch). The runner sends whatever is left after `complete`.
   */
  takeDeadLetters(): Message[];
}

export interface BatchDone<I, R> {
  applied: Array<Applied<I, R>>;
  /** Messages `decode` had nothing to apply for (e.g. tombstones). */
  skipped: number;
  deadLetters: readonly Poison[];
}

export interface StageWork<I, R> {
  /** DLQ reason codes for data errors thrown by `decode` and `apply` (unless a PoisonMessageError names its own). */
  reasons: { decode: string; apply: string };
  /** Most items in one `apply` call (default: the whole batch). */
  chunkSize?: number;
  /** The item to apply for a message, or null when there is nothing to apply. */
  decode(message: KafkaMessage, ctx: BatchContext): I | null | Promise<I | null>;
  /** Applies items in one go: one result per item, in order. */
  apply(items: I[], ctx: BatchContext): Promise<R[]>;
  /** What a dead letter of an item that failed `apply` carries besides the reason. */
  describe?(item: I): Pick<Poison, 'adjustmentId' | 'tags'>;
  /** After every chunk is applied, before the offsets move: publish the effects. */
  complete?(done: BatchDone<I, R>, ctx: BatchContext): Promise<void>;
  /** After the offsets moved: count, and return fields for the batch's debug line. */
  committed?(done: BatchDone<I, R>, ctx: BatchContext): Record<string, number> | void;
}

/** The metrics every stage has (the stages' own metrics objects carry them under these names). */
export interface StageMetrics {
  dlq: Counter<'reason'>;
  batchApply: Histogram;
  lag: Gauge<'topic' | 'partition'>;
}

// ---------------------------------------------------------------------------------------------
// One batch

/** The part of kafkajs' eachBatch payload the runner uses. */
export interface BatchPayload {
  batch: Pick<Batch, 'topic' | 'partition' | 'highWatermark' | 'messages'>;
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  commitOffsetsIfNecessary(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

export interface BatchEnv {
  groupId: string;
  dlqTopic: string;
  /** The stage's grouped, acknowledged send (BatchContext.send). */
  send(topicMessages: TopicMessages[]): Promise<void>;
  log: Logger;
  metrics: StageMetrics;
}

/** Processes one batch: decode, apply by chunks, complete, dead-letter, commit, measure. */
export async function runBatch<I, R>(payload: BatchPayload, work: StageWork<I, R>, env: BatchEnv): Promise<void> {
  const { batch } = payload;
  if (!payload.isRunning() || payload.isStale() || batch.messages.length === 0) return;
  const started = performance.now();
  const log = env.log.child({ topic: batch.topic, partition: batch.partition });
  const box = new DeadLetterBox({ topic: batch.topic, partition: batch.partition, groupId: env.groupId, log });
  const ctx: BatchContext = {
    topic: batch.topic,
    partition: batch.partition,
    log,
    send: env.send,
    dlqTopic: env.dlqTopic,
    deadLetter: (p) => box.add(p),
    takeDeadLetters: () => box.take(),
  };

  const { decoded, skipped } = await decodeAll(batch.messages, work, ctx);
  const applied = await applyChunks(decoded, work, ctx, payload.heartbeat);
  const done: BatchDone<I, R> = { applied, skipped, deadLetters: box.all };
  await work.complete?.(done, ctx);
  const rest = box.take();
  if (rest.length > 0) await env.send([{ topic: env.dlqTopic, messages: rest }]);

  // Only now (the work done, its effects and dead letters acknowledged) may the offsets move.
  const last = batch.messages[batch.messages.length - 1]!;
  payload.resolveOffset(last.offset);
  await payload.commitOffsetsIfNecessary();
  await payload.heartbeat();

  const fields = work.committed?.(done, ctx) ?? {};
  for (const d of box.all) env.metrics.dlq.inc({ reason: d.code });
  env.metrics.batchApply.observe((performance.now() - started) / 1000);
  const lag = consumerLag(batch.highWatermark, last.offset);
  env.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, lag);
  log.debug({ offset: last.offset, size: batch.messages.length, ...fields, dlq: box.all.length, lag }, 'batch applied');
}

async function decodeAll<I, R>(messages: KafkaMessage[], work: StageWork<I, R>, ctx: BatchContext): Promise<{ decoded: Array<Decoded<I>>; skipped: number }> {
  const decoded: Array<Decoded<I>> = [];
  let skipped = 0;
  for (const message of messages) {
    let item: I | null;
    try {
      item = await work.decode(message, ctx);
    } catch (err) {
      if (!isDataError(err)) throw err;
      ctx.deadLetter(poisonOf(message, err, work.reasons.decode));
      continue;
    }
    if (item === null) skipped++;
    else decoded.push({ message, item });
  }
  return { decoded, skipped };
}

async function applyChunks<I, R>(decoded: Array<Decoded<I>>, work: StageWork<I, R>, ctx: BatchContext, heartbeat: () => Promise<void>): Promise<Array<Applied<I, R>>> {
  const size = work.chunkSize ?? Math.max(1, decoded.length);
  const applied: Array<Applied<I, R>> = [];
  for (let from = 0; from < decoded.length; from += size) {
    const chunk = decoded.slice(from, from + size);
    const done = await applyWithSplit(
      chunk,
      (items) => work.apply(items, ctx),
      (d, err) => ctx.deadLetter(poisonOf(d.message, err, work.reasons.apply, work.describe?.(d.item))),
      (err) => ctx.log.warn({ err: errorMessage(err), size: chunk.length }, 'a chunk failed on its data; applying it one by one'),
    );
    applied.push(...done);
    await heartbeat();
  }
  return applied;
}

// ---------------------------------------------------------------------------------------------
// The consumer, its membership and crash policy

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

/** Every stage's producer: idempotent, one request in flight (so retries keep the order). */
const STAGE_PRODUCER = { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false } as const;

const PRODUCER_STATE_LOST = /out of order sequence|producer epoch|unknown producer id|producer id mapping|OUT_OF_ORDER_SEQUENCE_NUMBER|INVALID_PRODUCER_EPOCH|UNKNOWN_PRODUCER_ID|INVALID_PRODUCER_ID_MAPPING/i;

/**
 * Whether a failed batch's error says the idempotent producer's state is gone: the broker refused
 * its sequence numbers or epoch (seen after a broker of a cluster was killed and a partition's
 * leader moved: "The broker received an out of order sequence number", which kafkajs makes
 * non-retriable). Only a new producer (a new producer id) can send again. The error or any cause
 * below it may carry the message or the protocol error's type.
 */
export function producerStateLost(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; depth++) {
    const x = e as { message?: unknown; type?: unknown; cause?: unknown; originalError?: unknown };
    if ((typeof x.message === 'string' && PRODUCER_STATE_LOST.test(x.message)) || (typeof x.type === 'string' && PRODUCER_STATE_LOST.test(x.type))) return true;
    e = x.cause ?? x.originalError;
  }
  return false;
}

/** A stage member's session when the configuration does not name one (KAFKA_SESSION_TIMEOUT_MS). */
export const DEFAULT_SESSION_TIMEOUT_MS = 3000;

/**
 * How a stage's fetches gather a batch. The broker answers a fetch as soon as `minBytes` are
 * there, or after `maxWaitTimeInMs`. Latency-bound stages (the processor, inbound adjustments)
 * take 1 byte: a fetch returns as soon as any message is there, whatever the wait, so the wait
 * only sets how often an idle consumer asks (500 ms: 2 empty fetches a second instead of 50 at
 * the former 20 ms, which kept the broker and every Node service busy while nothing happened).
 * A stage whose readers do not wait on it (the movement relay) gathers: fewer, larger batches
 * cost a fraction of the per-batch work (a query, a produce request, socket writes) per message.
 */
export interface StageFetch {
  minBytes?: number;
  maxWaitTimeInMs?: number;
}

export const DEFAULT_STAGE_FETCH = { minBytes: 1, maxWaitTimeInMs: 500 } as const;

export function stageFetchOptions(fetch: StageFetch = {}): { minBytes: number; maxWaitTimeInMs: number } {
  return { minBytes: fetch.minBytes ?? DEFAULT_STAGE_FETCH.minBytes, maxWaitTimeInMs: fetch.maxWaitTimeInMs ?? DEFAULT_STAGE_FETCH.maxWaitTimeInMs };
}

/**
 * The consume → process → produce pair of a stage: an idempotent producer, a group consumer
 * subscribed to `topic` with the platform's timings (a killed instance's partitions move to the
 * others after `sessionTimeoutMs`: KAFKA_SESSION_TIMEOUT_MS, 3 s by default, which the broker's
 * `group.min.session.timeout.ms` must allow (the native stack and compose set 2 s; Kafka's own
 * floor is 6 s and its default session 45 s); a failed batch is retried at most 2 s after the
 * failure, so a dependency that is back is used again at once), and its membership tracker.
 * Connected and subscribed. A group that starts from the latest offsets has that start pinned
 * first (`pinLatestStart`).
 */
export async function connectStage(opts: { kafka: Kafka; groupId: string; topic: string; fromBeginning: boolean; log: Logger; sessionTimeoutMs?: number; fetch?: StageFetch }): Promise<{
  producer: Producer;
  consumer: Consumer;
  membership: Membership;
}> {
  const producer = opts.kafka.producer(STAGE_PRODUCER);
  const consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    ...stageFetchOptions(opts.fetch),
    sessionTimeout: opts.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
    heartbeatInterval: Math.max(100, Math.floor((opts.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS) / 10)),
    // About 7 s of retries (0.2, 0.4, 0.8, 1.6, 2, 2 s) before the consumer crashes and kafkajs
    // restarts it with fresh metadata. kafkajs keeps one fetcher per broker and learns that a dead
    // broker's partitions have new leaders only when that fetcher gives up: with 15 retries (~25 s)
    // a killed broker of a cluster stalled the CDC path for 30 s after its partitions had moved
    // (6 s); 7 s is about the brokers' fencing time (docs/reliability.md, cluster topology).
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 6 },
  });
  const membership = trackMembership(consumer, opts.topic, opts.log);
  if (!opts.fromBeginning) await pinLatestStart(opts.kafka, opts.groupId, opts.topic, opts.log);
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: opts.fromBeginning });
  return { producer, consumer, membership };
}

/**
 * "Start from the latest offset" for a group's partitions that have no committed offset yet,
 * written down as committed offsets before the first member joins. Without it, "latest" is
 * resolved again by every member that finds no commit: a member killed before its first commit
 * on a partition (commits go out once a second) left its replacement starting at the new end,
 * past every event the first one had not finished — those changes never reached the views (found
 * by tests/processor-e2e.int.test.ts, a SIGKILL a second after start). Only while the group has
 * no members (running members own their positions); any failure leaves kafkajs' own behaviour.
 */
export async function pinLatestStart(kafka: Kafka, groupId: string, topic: string, log: Logger): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const missing = (committed?.partitions ?? []).filter((p) => p.offset === '-1').map((p) => p.partition);
    if (missing.length === 0) return;
    const { groups } = await admin.describeGroups([groupId]);
    const state = groups[0]?.state ?? 'Dead';
    if (state !== 'Empty' && state !== 'Dead') return;
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.offset]));
    const partitions = missing.filter((p) => ends.has(p)).map((partition) => ({ partition, offset: ends.get(partition)! }));
    await admin.setOffsets({ groupId, topic, partitions });
    log.info({ topic, partitions }, 'start pinned at the latest offsets');
  } catch (err) {
    log.warn({ err: errorMessage(err), topic }, 'could not pin the start at the latest offsets; kafkajs resolves it');
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * How a stage runs its consumer: batches, offsets resolved by the runner only after the work for a
 * batch is done, committed at most once a second, partitions in parallel.
 */
export function stageRunOptions(partitionsConsumedConcurrently = 6) {
  return { eachBatchAutoResolve: false, autoCommit: true, autoCommitInterval: 1000, partitionsConsumedConcurrently } as const;
}

// ---------------------------------------------------------------------------------------------
// A running stage

export interface StageOptions<I, R> {
  kafka: Kafka;
  groupId: string;
  topic: string;
  dlqTopic: string;
  fromBeginning: boolean;
  /** The stage's logger (its component and group already bound). */
  log: Logger;
  metrics: StageMetrics;
  partitionsConsumedConcurrently?: number;
  /** The group session (KAFKA_SESSION_TIMEOUT_MS); DEFAULT_SESSION_TIMEOUT_MS when left out. */
  sessionTimeoutMs?: number;
  /** How fetches gather a batch (DEFAULT_STAGE_FETCH when left out). */
  fetch?: StageFetch;
  work: StageWork<I, R>;
}

export interface RunningStage {
  /** Resolves once the consumer has joined its group and has partitions assigned. */
  joined: Promise<{ memberId: string; partitions: number[] }>;
  isReady(): boolean;
  /** The partitions of the stage's topic assigned to this instance now. */
  partitions(): number[];
  /** Leaves the group after the batch in progress is done and committed. */
  stop(): Promise<void>;
}

export async function startKafkaStage<I, R>(opts: StageOptions<I, R>): Promise<RunningStage> {
  const { producer, consumer, membership } = await connectStage(opts);
  // The producer in use (replaced when its idempotence state is refused, below); the batches'
  // sends go through one GroupSender, so partitions finishing together share a request.
  let current = producer;
  const sender = new GroupSender((topicMessages) => current.sendBatch({ topicMessages, acks: -1 }));
  const env: BatchEnv = { groupId: opts.groupId, dlqTopic: opts.dlqTopic, send: (tm) => sender.send(tm), log: opts.log, metrics: opts.metrics };
  // A producer whose idempotence state the brokers refuse is replaced once (however many batches
  // of the partitions in parallel saw it fail), and the batch fails with an ordinary error, which
  // kafkajs retries: nothing of it was committed, so the retry on the new producer redoes it.
  // Without this the consumer crashed unrestartably and the crash policy exited the process.
  let renewing: Promise<void> | undefined;
  const renew = (failed: Producer): Promise<void> => {
    if (current !== failed) return Promise.resolve();
    renewing ??= (async () => {
      const fresh = opts.kafka.producer(STAGE_PRODUCER);
      await fresh.connect();
      current = fresh;
      await failed.disconnect().catch(() => undefined);
    })().finally(() => {
      renewing = undefined;
    });
    return renewing;
  };
  await consumer.run({
    ...stageRunOptions(opts.partitionsConsumedConcurrently),
    eachBatch: async (payload) => {
      const used = current;
      try {
        await runBatch(payload, opts.work, env);
      } catch (err) {
        if (!producerStateLost(err)) throw err;
        opts.log.warn({ err: errorMessage(err) }, 'the brokers refused the producer\'s sequence (a partition leader moved): re-creating the producer and retrying the batch');
        await renew(used);
        throw new Error(`batch retried on a new producer: ${errorMessage(err)}`, { cause: err });
      }
    },
  });
  return {
    joined: membership.joined,
    isReady: membership.isReady,
    partitions: membership.partitions,
    async stop() {
      membership.leave();
      await consumer.disconnect().catch(() => undefined);
      await current.disconnect().catch(() => undefined);
    },
  };
}
