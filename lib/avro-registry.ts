/**
 * The platform's Avro contract with the schema registry (Confluent API: Apicurio's ccompat/v7
 * natively, Confluent Schema Registry in compose).
 *
 * The schemas are the files in `schemas/avro/` (the source of truth; the TypeScript types in
 * `schemas/generated/avro-types.ts` are generated from them). Each public topic's value schema
 * is registered under the TopicNameStrategy subject `<topic>-value`, with the subject's
 * compatibility set to BACKWARD, so a new schema version can always read data written with the
 * previous one. Registration is idempotent: registering an unchanged schema returns its id.
 *
 * Values are validated against the schema before they are encoded; an invalid value throws a
 * SchemaError naming the schema and every offending field, and nothing is encoded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import {
  SCHEMA_FILES,
  type AvroRecordName,
  type StockAdjustment,
  type StockAlert,
  type StockDelta,
  type StockLevel,
  type StockMovement,
} from '../schemas/generated/avro-types.ts';
import { PROJECT_ROOT, type RegistryConnection } from './config.ts';
import { fromRegistryError } from './driver-errors.ts';
import { errorMessage, SchemaError, TransientError } from './errors.ts';
import { TOPICS } from './topics.ts';

export interface AvroCodec<T> {
  /** Registry subject, `<topic>-value`. */
  subject: string;
  /** Registry id of the schema values are encoded with (Confluent wire format). */
  schemaId: number;
  /** Validates `value` against the schema and encodes it; throws SchemaError when invalid. */
  encode(value: T): Promise<Buffer>;
}

export interface StockCodecs {
  stockDelta: AvroCodec<StockDelta>;
  stockLevel: AvroCodec<StockLevel>;
  stockAdjustment: AvroCodec<StockAdjustment>;
  stockAlert: AvroCodec<StockAlert>;
  stockMovement: AvroCodec<StockMovement>;
}

/** The value subject of a topic under the TopicNameStrategy. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

/** Which schema each public topic carries. */
export const STOCK_SUBJECTS = {
  stockDelta: { subject: valueSubject(TOPICS.stockDeltas), schema: 'StockDelta' },
  stockLevel: { subject: valueSubject(TOPICS.stockLevels), schema: 'StockLevel' },
  stockAdjustment: { subject: valueSubject(TOPICS.stockAdjustments), schema: 'StockAdjustment' },
  stockAlert: { subject: valueSubject(TOPICS.stockAlerts), schema: 'StockAlert' },
  stockMovement: { subject: valueSubject(TOPICS.stockMovements), schema: 'StockMovement' },
} as const satisfies Record<keyof StockCodecs, { subject: string; schema: AvroRecordName }>;

const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** Reads and parses `schemas/avro/<name>.avsc`. */
export function loadAvroSchema(name: AvroRecordName): object {
  const file = SCHEMA_FILES[name];
  try {
    return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8')) as object;
  } catch (err) {
    throw new SchemaError(`cannot load Avro schema ${name} from ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Where the registry is: its Confluent API base URL (e.g. .../apis/ccompat/v7), or
 * `config.registry` (URL plus basic-auth credentials when configured).
 */
export type RegistryTarget = string | RegistryConnection;

function registryBase(target: RegistryTarget): string {
  return (typeof target === 'string' ? target : target.url).replace(/\/+$/, '');
}

function registryAuth(target: RegistryTarget): RegistryConnection['auth'] {
  return typeof target === 'string' ? undefined : target.auth;
}

/** A registry client for `target`, with basic auth when the target has credentials. */
export function createSchemaRegistry(target: RegistryTarget): SchemaRegistry {
  const auth = registryAuth(target);
  return new SchemaRegistry({ host: registryBase(target), ...(auth ? { auth } : {}) });
}

/**
 * Sets a subject's compatibility level. Returns false when the registry answers 404 because the
 * subject does not exist yet (some registries refuse config for unknown subjects; Apicurio and
 * Confluent accept it).
 */
export async function setSubjectCompatibility(registryUrl: RegistryTarget, subject: string, level: COMPATIBILITY): Promise<boolean> {
  const url = `${registryBase(registryUrl)}/config/${encodeURIComponent(subject)}`;
  const auth = registryAuth(registryUrl);
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'PUT',
        headers: {
          'content-type': REGISTRY_CONTENT_TYPE,
          accept: REGISTRY_CONTENT_TYPE,
          ...(auth ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {}),
        },
        body: JSON.stringify({ compatibility: level }),
      });
    } catch (err) {
      throw new TransientError(`schema registry unreachable at ${registryBase(registryUrl)}: ${errorMessage(err)}`, { cause: err });
    }
    const body = await res.text();
    if (res.ok) return true;
    if (res.status === 404) return false;
    // Two processes starting together (the processor and the connectors both write stock.levels)
    // race to create the subject's rule: Apicurio answers the loser 409 "A rule named
    // 'COMPATIBILITY' already exists" (seen at a cold start). The rule exists now: the same PUT updates it.
    if (res.status === 409 && /already exists/i.test(body) && attempt < 3) continue;
    const message = `could not set compatibility ${level} on subject ${subject}: HTTP ${res.status} ${body}`;
    if (res.status >= 500) throw new TransientError(message, { details: { subject, status: res.status } });
    throw new SchemaError(message, { details: { subject, status: res.status } });
  }
}

/**
 * Registers `schema` under `subject` with BACKWARD compatibility and returns its id. The
 * compatibility is set before the first registration when the registry allows it (so even the
 * first version is governed), otherwise right after it.
 */
export async function registerAvroSchema(
  registry: SchemaRegistry,
  registryUrl: RegistryTarget,
  subject: string,
  schema: object,
): Promise<number> {
  const configuredFirst = await setSubjectCompatibility(registryUrl, subject, COMPATIBILITY.BACKWARD);
  let id: number;
  try {
    // (@kafkajs/confluent-schema-registry 3.x, which supports Node 20, has no `updateConfig`
    // option: it sets the compatibility itself only when the subject had none, i.e. the same
    // PUT as the one below.)
    ({ id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject, compatibility: COMPATIBILITY.BACKWARD }));
  } catch (err) {
    const name = (schema as { name?: unknown }).name;
    throw fromRegistryError(err, `registry refused schema ${String(name)} for subject ${subject}`);
  }
  if (!configuredFirst && !(await setSubjectCompatibility(registryUrl, subject, COMPATIBILITY.BACKWARD))) {
    throw new SchemaError(`could not set compatibility BACKWARD on subject ${subject}: the registry answers 404`);
  }
  return id;
}

interface AvscLikeType {
  name?: string;
  typeName?: string;
  isValid(value: unknown, opts?: { errorHook: (path: string[], value: unknown, type: AvscLikeType) => void }): boolean;
  toBuffer(value: unknown): Buffer;
}

/** Confluent's wire format: magic byte 0, the schema's registry id (big-endian int32), the Avro bytes. */
export function confluentWire(schemaId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out[0] = 0;
  out.writeInt32BE(schemaId, 1);
  payload.copy(out, 5);
  return out;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined (missing)';
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return String(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}

/** Every field of `value` that does not match `type`, e.g. `available: expected int, got "12"`. */
function invalidFields(type: AvscLikeType, value: unknown): string[] {
  const problems: string[] = [];
  type.isValid(value, {
    errorHook: (fieldPath, fieldValue, fieldType) => {
      const expected = fieldType.name ?? fieldType.typeName ?? 'unknown type';
      problems.push(`${fieldPath.length ? fieldPath.join('.') : '(value)'}: expected ${expected}, got ${describeValue(fieldValue)}`);
    },
  });
  return problems;
}

function codec<T>(registry: SchemaRegistry, subject: string, schemaName: string, schemaId: number): AvroCodec<T> {
  // The schema of an id never changes: fetched once, then encoded without a registry round of
  // promises per record (a batch encodes thousands; docs/benchmarks.md, "Kafka client costs in the fold").
  let type: AvscLikeType | undefined;
  return {
    subject,
    schemaId,
    async encode(value: T): Promise<Buffer> {
      const context = () => `invalid ${schemaName} for subject ${subject} (schema id ${schemaId})`;
      if (value === null || typeof value !== 'object') {
        throw new SchemaError(`${context()}: expected a record, got ${describeValue(value)}`, { details: { schema: schemaName, subject } });
      }
      if (!type) {
        try {
          type = (await registry.getSchema(schemaId)) as unknown as AvscLikeType;
        } catch (err) {
          throw fromRegistryError(err, `cannot fetch schema id ${schemaId} (${schemaName}) from the registry`);
        }
      }
      if (!type.isValid(value)) {
        const problems = invalidFields(type, value);
        throw new SchemaError(`${context()}: ${problems.join('; ')}`, { details: { schema: schemaName, subject, problems } });
      }
      try {
        return confluentWire(schemaId, type.toBuffer(value));
      } catch (err) {
        throw new SchemaError(`${context()}: ${errorMessage(err)}`, { cause: err, details: { schema: schemaName, subject } });
      }
    },
  };
}

/**
 * Registers the platform's value schemas (stock.deltas, stock.levels, stock.adjustments, stock.alerts) with
 * BACKWARD compatibility and returns one codec per topic. Safe to call at every start-up.
 */
export async function registerStockSchemas(registryUrl: RegistryTarget): Promise<StockCodecs> {
  const registry = createSchemaRegistry(registryUrl);
  const make = async <T>(entry: { subject: string; schema: AvroRecordName }): Promise<AvroCodec<T>> => {
    const id = await registerAvroSchema(registry, registryUrl, entry.subject, loadAvroSchema(entry.schema));
    return codec<T>(registry, entry.subject, entry.schema, id);
  };
  // One after another: a failure names the first subject that went wrong, and nothing races.
  const stockDelta = await make<StockDelta>(STOCK_SUBJECTS.stockDelta);
  const stockLevel = await make<StockLevel>(STOCK_SUBJECTS.stockLevel);
  const stockAdjustment = await make<StockAdjustment>(STOCK_SUBJECTS.stockAdjustment);
  const stockAlert = await make<StockAlert>(STOCK_SUBJECTS.stockAlert);
  const stockMovement = await make<StockMovement>(STOCK_SUBJECTS.stockMovement);
  return { stockDelta, stockLevel, stockAdjustment, stockAlert, stockMovement };
}

/**
 * Decodes a Confluent-framed Avro message (magic byte, schema id, payload), fetching the writer
 * schema by id. A malformed frame or an unknown schema id throws SchemaError.
 */
export async function decodeAvro<T>(registry: SchemaRegistry, buffer: Buffer): Promise<T> {
  if (!Buffer.isBuffer(buffer) || buffer.length < 5 || buffer[0] !== 0) {
    throw new SchemaError('not a Confluent-framed Avro message (expected magic byte 0 and a 4-byte schema id)');
  }
  const schemaId = buffer.readInt32BE(1);
  try {
    return (await registry.decode(buffer)) as T;
  } catch (err) {
    // A response status means the registry answered (or could not be reached); anything else
    // is a payload avsc could not read.
    const status = (err as { status?: unknown } | null)?.status;
    if (typeof status === 'number') {
      throw fromRegistryError(err, `cannot decode Avro message with schema id ${schemaId}`);
    }
    throw new SchemaError(`cannot decode Avro message with schema id ${schemaId}: ${errorMessage(err)}`, { cause: err });
  }
}
