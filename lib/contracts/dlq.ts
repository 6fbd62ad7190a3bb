/**
 * The dead-letter format of `inventory.dlq` (docs/asyncapi.yaml): the one home of its headers,
 * its reason strings and how a dead letter is written and read back.
 *
 * A dead letter is the poison message itself — key and value byte for byte — with the why and
 * the where in headers:
 *   dlq.reason            `<code>: <detail>`; the code (the part before the first colon) is stable,
 *                         metrics label dead letters with it and tests match on it
 *   dlq.source.topic      where the message was read,
 *   dlq.source.partition  as a decimal string,
 *   dlq.source.offset     as kafkajs gives it;
 *   dlq.processor         the consumer group that dead-lettered it
 *   dlq.failed.at         ISO-8601 time of the decision
 *   dlq.adjustment.id     only from the inbound connector, when the adjustment decoded
 *
 * Owns: the wire format. Must not: decide what is poison (lib/kafka-stage.ts and the stages do).
 */
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

export const DLQ_HEADERS = {
  reason: 'dlq.reason',
  sourceTopic: 'dlq.source.topic',
  sourcePartition: 'dlq.source.partition',
  sourceOffset: 'dlq.source.offset',
  processor: 'dlq.processor',
  failedAt: 'dlq.failed.at',
  adjustmentId: 'dlq.adjustment.id',
} as const;

/**
 * Reason codes written by the stages. The inbound connector also writes the adjustment refusal
 * codes of connectors/inbound/domain/decide.ts (`negative_on_hand`, ...) as they are; outbound
 * mappings write `mapping <name>`.
 */
export const DLQ_REASONS = {
  /** Stock processor: a CDC event that does not decode (stream-processors/domain/stock-change.ts). */
  cdcUndecodable: 'undecodable CDC event',
  /** Stock processor: Redis refused the change itself (a script error for that event). */
  applyFailed: 'apply failed',
  /** Stock processor: the event's effect does not fit the schema of stock.deltas. */
  effectNotEncodable: 'effect not encodable',
  /** Inbound connector: not a registry-framed Avro StockAdjustment. */
  undecodable: 'undecodable',
  /** Inbound connector: decoded, but a field is out of range. */
  invalid: 'invalid',
  /** Inbound connector: the message key is not the adjustment's SKU. */
  keyMismatch: 'key_mismatch',
  /** Inbound connector: Postgres refused the row itself (the safety net behind validation). */
  adjustmentApplyFailed: 'apply_failed',
} as const;

/** `dlq.reason`: `<code>: <detail>`. */
export function dlqReason(code: string, detail: string): string {
  return `${code}: ${detail}`;
}

/** The code of a `dlq.reason` (the part before the first colon). */
export function reasonCode(reason: string): string {
  return reason.split(':')[0] ?? reason;
}

/** What is known about a poison message when it is dead-lettered. */
export interface DeadLetter {
  code: string;
  detail: string;
  topic: string;
  partition: number;
  message: Pick<KafkaMessage, 'key' | 'value' | 'offset'>;
  /** Inbound adjustments: the id, when the message decoded that far. */
  adjustmentId?: string;
}

/** The DLQ message for a dead letter; `processor` is the consumer group that gives up on it. */
export function encodeDeadLetter(d: DeadLetter, processor: string, now = new Date()): Message {
  const headers: Record<string, string> = {
    [DLQ_HEADERS.reason]: dlqReason(d.code, d.detail),
    [DLQ_HEADERS.sourceTopic]: d.topic,
    [DLQ_HEADERS.sourcePartition]: String(d.partition),
    [DLQ_HEADERS.sourceOffset]: d.message.offset,
    [DLQ_HEADERS.processor]: processor,
    [DLQ_HEADERS.failedAt]: now.toISOString(),
  };
  if (d.adjustmentId !== undefined) headers[DLQ_HEADERS.adjustmentId] = d.adjustmentId;
  return { key: d.message.key, value: d.message.value, headers };
}

/** A DLQ message as read back (tests, tools). */
export interface DlqRecord {
  key: Buffer | string | null;
  value: Buffer | string | null;
  reason: string;
  code: string;
  source: { topic: string; partition: number; offset: string };
  processor: string;
  failedAt: Date;
  adjustmentId?: string;
}

function header(headers: IHeaders | Record<string, string | undefined> | undefined, name: string): string | undefined {
  const v = headers?.[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : one.toString();
}

/** Reads a DLQ message back; null when it lacks the headers every dead letter has. */
export function decodeDeadLetter(m: { key?: Buffer | string | null; value: Buffer | string | null; headers?: IHeaders | Record<string, string | undefined> }): DlqRecord | null {
  const h = (name: string) => header(m.headers, name);
  const reason = h(DLQ_HEADERS.reason);
  const topic = h(DLQ_HEADERS.sourceTopic);
  const partition = h(DLQ_HEADERS.sourcePartition);
  const offset = h(DLQ_HEADERS.sourceOffset);
  if (reason === undefined || topic === undefined || partition === undefined || offset === undefined) return null;
  const adjustmentId = h(DLQ_HEADERS.adjustmentId);
  return {
    key: m.key ?? null,
    value: m.value,
    reason,
    code: reasonCode(reason),
    source: { topic, partition: Number(partition), offset },
    processor: h(DLQ_HEADERS.processor) ?? '',
    failedAt: new Date(h(DLQ_HEADERS.failedAt) ?? Number.NaN),
    ...(adjustmentId === undefined ? {} : { adjustmentId }),
  };
}
