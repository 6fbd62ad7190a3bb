/**
 * Applies one outbound mapping to one decoded source message: explode lists, filter, route to a
 * (templated) topic, pick the key, select and rename fields, and stamp the headers a consumer
 * de-duplicates on. A message the mapping cannot handle (a placeholder without a value, an
 * invalid topic name, no key) yields a reason instead of records; the runtime dead-letters it.
 *
 * Pure: no I/O. The same message always maps to the same records (same topics, keys, values and
 * headers), which is what makes re-runs after a crash harmless.
 */
import type { Condition, Mapping, Path, Template } from './mapping-spec.ts';
import { AVRO_SOURCES, topicNameProblem } from './mapping-spec.ts';

export interface SourceMessage {
  topic: string;
  partition: number;
  offset: string;
  /** Kafka timestamp, ms since the epoch as a decimal string (kafkajs' form). */
  timestamp: string;
  key: string | null;
  headers: Record<string, string>;
  /** The decoded value (an Avro record, or the parsed JSON). */
  value: unknown;
  /** The value's original bytes (copied by `avro-as-is`). */
  raw: Buffer | null;
}

export interface MappedRecord {
  topic: string;
  key: string;
  value: Buffer | string;
  headers: Record<string, string>;
}

/**
 * `records`: what to produce (none when filtered out). `problems`: why some or all of the message
 * could not be mapped; the runtime dead-letters the message once with them. An exploded element
 * that cannot be mapped does not hold back its siblings.
 */
export interface MapOutcome {
  records: MappedRecord[];
  problems: string[];
}

/** Header names stamped on every mapped record (docs/outbound-mappings.md, "Delivery"). */
export const MAPPED_HEADERS = {
  /** Stable and unique per mapped record: the same source record always gives the same id. */
  dedupId: 'invsync.dedup-id',
  mapping: 'invsync.mapping',
  /** `<topic>/<partition>/<offset>` of the source message. */
  source: 'invsync.source',
  /** stock.deltas / stock.levels: the SKU version (keep the highest per key). */
  version: 'invsync.version',
  /** orders.events: the event id (the source's `id` header) and type. */
  eventId: 'invsync.event-id',
  eventType: 'invsync.event-type',
} as const;

type Rec = Record<string, unknown>;

interface Scope {
  record: Rec;
  /** Indexes of the exploded elements, for the de-duplication id. */
  index: number[];
}

function isRecord(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** Resolves a path; `undefined` when some step is missing. */
export function resolvePath(path: Path, record: Rec, msg: SourceMessage): unknown {
  switch (path.kind) {
    case 'header':
      return msg.headers[path.name];
    case 'meta':
      switch (path.field) {
        case 'key':
          return msg.key ?? undefined;
        case 'topic':
          return msg.topic;
        case 'partition':
          return msg.partition;
        case 'offset':
          return msg.offset;
        case 'timestamp':
          return Number(msg.timestamp);
      }
      return undefined;
    case 'value': {
      let at: unknown = record;
      for (const seg of path.segments) {
        if (Array.isArray(at) && /^\d+$/.test(seg)) at = at[Number(seg)];
        else if (isRecord(at)) at = at[seg];
        else return undefined;
      }
      return at;
    }
  }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Renders a template; a placeholder must resolve to a single value. */
export function renderTemplate(t: Template, record: Rec, msg: SourceMessage): { ok: true; text: string } | { ok: false; reason: string } {
  let out = '';
  for (const part of t.parts) {
    if ('literal' in part) {
      out += part.literal;
      continue;
    }
    const v = resolvePath(part.path, record, msg);
    if (v === undefined || v === null) return { ok: false, reason: `${part.path.text} is missing` };
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'bigint') {
      return { ok: false, reason: `${part.path.text} is not a single value (got ${describe(v)})` };
    }
    out += String(v);
  }
  return { ok: true, text: out };
}

export function matches(c: Condition, record: Rec, msg: SourceMessage): boolean {
  const raw = resolvePath(c.path, record, msg);
  const v = raw === undefined ? null : raw;
  switch (c.op) {
    case 'in':
      return c.values.some((x) => x === v);
    case 'notIn':
      return !c.values.some((x) => x === v);
    case 'prefix':
      return typeof v === 'string' && v.startsWith(c.value);
    case 'exists':
      return (v !== null) === c.value;
  }
}

/** The record with the value at `segments` removed (copies along the path; the input is untouched). */
function without(record: Rec, segments: string[]): Rec {
  const [head, ...rest] = segments;
  if (head === undefined || !(head in record)) return record;
  const copy: Rec = { ...record };
  if (rest.length === 0) delete copy[head];
  else if (isRecord(copy[head])) copy[head] = without(copy[head] as Rec, rest);
  return copy;
}

function explode(mapping: Mapping, root: Rec, msg: SourceMessage): { ok: true; scopes: Scope[] } | { ok: false; reason: string } {
  let scopes: Scope[] = [{ record: root, index: [] }];
  for (const step of mapping.explode) {
    const next: Scope[] = [];
    for (const s of scopes) {
      const list = resolvePath(step.path, s.record, msg);
      if (list === undefined || list === null) continue; // nothing to explode: no records
      if (!Array.isArray(list)) return { ok: false, reason: `explode: ${step.path.text} is not a list (got ${describe(list)})` };
      // A top-level list that is exploded is left out of the record; its element is under `as`.
      const base = step.path.segments.length === 1 ? without(s.record, step.path.segments) : s.record;
      list.forEach((element, i) => next.push({ record: { ...base, [step.as]: element }, index: [...s.index, i] }));
    }
    scopes = next;
  }
  return { ok: true, scopes };
}

/**
 * The source record's identity: SKU and version for the stock topics (and, for a delta, its
 * location: one transaction that changes several locations of a SKU gives one delta per
 * location at the same SKU version), the event id for orders.
 */
function sourceIdentity(mapping: Mapping, root: Rec, msg: SourceMessage): { id: string; version?: string } {
  if (AVRO_SOURCES.has(mapping.source) && (typeof root.version === 'number' || typeof root.version === 'bigint')) {
    const version = String(root.version);
    const location = mapping.source === 'stock.deltas' && typeof root.locationId === 'string' ? `/${root.locationId}` : '';
    return { id: `${msg.key ?? ''}@${version}${root.deleted === true ? '-deleted' : ''}${location}`, version };
  }
  const eventId = msg.headers.id;
  if (eventId) return { id: eventId };
  return { id: `${msg.topic}/${msg.partition}/${msg.offset}` };
}

/**
 * Maps one message. `reservedTopics`: names a templated output may never resolve to (the
 * platform's topics).
 */
export function mapMessage(mapping: Mapping, msg: SourceMessage, reservedTopics: readonly string[] = []): MapOutcome {
  if (!isRecord(msg.value)) return { records: [], problems: [`value is not a record (got ${describe(msg.value)})`] };
  const root = msg.value;
  const exploded = explode(mapping, root, msg);
  if (!exploded.ok) return { records: [], problems: [exploded.reason] };
  const identity = sourceIdentity(mapping, root, msg);
  const records: MappedRecord[] = [];
  const problems: string[] = [];
  for (const scope of exploded.scopes) {
    if (!mapping.filter.every((c) => matches(c, scope.record, msg))) continue;
    const where = scope.index.length ? ` (element ${scope.index.join('.')})` : '';
    const topic = renderTemplate(mapping.output, scope.record, msg);
    if (!topic.ok) {
      problems.push(`output topic ${mapping.output.text}: ${topic.reason}${where}`);
      continue;
    }
    const problem = topicNameProblem(topic.text);
    if (problem) {
      problems.push(`output topic ${JSON.stringify(topic.text)} ${problem}${where}`);
      continue;
    }
    if (reservedTopics.includes(topic.text) || topic.text === msg.topic) {
      problems.push(`output topic ${JSON.stringify(topic.text)} is a platform topic; refusing to write to it${where}`);
      continue;
    }
    const key = renderTemplate(mapping.key, scope.record, msg);
    if (!key.ok) {
      problems.push(`key ${mapping.key.text}: ${key.reason}${where}`);
      continue;
    }

    let value: Buffer | string;
    if (mapping.format === 'avro-as-is') {
      if (!msg.raw) {
        problems.push('no value bytes to copy');
        continue;
      }
      value = msg.raw;
    } else if (mapping.fields) {
      const out: Rec = {};
      for (const f of mapping.fields) {
        const v = resolvePath(f.from, scope.record, msg);
        out[f.to] = v === undefined ? null : v;
      }
      value = stringify(out);
    } else {
      value = stringify(scope.record);
    }

    const headers: Record<string, string> = {
      [MAPPED_HEADERS.dedupId]: `${mapping.name}:${identity.id}${scope.index.length ? `#${scope.index.join('.')}` : ''}`,
      [MAPPED_HEADERS.mapping]: mapping.name,
      [MAPPED_HEADERS.source]: `${msg.topic}/${msg.partition}/${msg.offset}`,
    };
    if (identity.version !== undefined) headers[MAPPED_HEADERS.version] = identity.version;
    if (msg.headers.id !== undefined) headers[MAPPED_HEADERS.eventId] = msg.headers.id;
    if (msg.headers.eventType !== undefined) headers[MAPPED_HEADERS.eventType] = msg.headers.eventType;
    records.push({ topic: topic.text, key: key.text, value, headers });
  }
  return { records, problems };
}

/** JSON; a bigint (an Avro long beyond 2^53, should a decoder produce one) becomes a string. */
function stringify(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
