/**
 * The outbound mapping file (docs/outbound-mappings.md): its YAML format, validated with zod and
 * then compiled into `Mapping`s — field paths parsed and checked against the shape of the source
 * topic (the Avro schema of stock.deltas / stock.levels, the documented order event payload),
 * topic and key templates parsed. A bad file is refused with one line naming the mapping and the
 * field, so a typo stops start-up instead of silently producing nulls.
 *
 * Pure: the caller reads the file and the Avro schemas and passes their text / parsed JSON in.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** The topics a mapping may read: the platform's public outbound contract. */
export const SOURCE_TOPICS = ['stock.deltas', 'stock.levels', 'orders.events'] as const;
export type SourceTopic = (typeof SOURCE_TOPICS)[number];

/** Sources whose values are Confluent-framed Avro (the rest are JSON). */
export const AVRO_SOURCES: ReadonlySet<SourceTopic> = new Set(['stock.deltas', 'stock.levels']);

export const FORMATS = ['json', 'avro-as-is'] as const;
export type Format = (typeof FORMATS)[number];

const META_FIELDS = ['key', 'topic', 'partition', 'offset', 'timestamp'] as const;
export type MetaField = (typeof META_FIELDS)[number];

/** Where a value comes from: a field of the (exploded) record, the message's metadata, or a header. */
export type Path =
  | { kind: 'value'; segments: string[]; text: string }
  | { kind: 'meta'; field: MetaField; text: string }
  | { kind: 'header'; name: string; text: string };

export type TemplatePart = { literal: string } | { path: Path };

export interface Template {
  text: string;
  parts: TemplatePart[];
  /** No placeholders: the same for every record. */
  isStatic: boolean;
}

export type Scalar = string | number | boolean | null;

export type Condition =
  | { path: Path; op: 'in'; values: Scalar[] }
  | { path: Path; op: 'notIn'; values: Scalar[] }
  | { path: Path; op: 'prefix'; value: string }
  | { path: Path; op: 'exists'; value: boolean };

export interface ExplodeStep {
  path: Path & { kind: 'value' };
  as: string;
}

export interface Mapping {
  name: string;
  source: SourceTopic;
  output: Template;
  format: Format;
  /** A single path, or a template when the `key` setting contains `{...}`. */
  key: Template;
  /** `undefined`: every field of the (exploded) record, as is. */
  fields: Array<{ from: Path; to: string }> | undefined;
  filter: Condition[];
  explode: ExplodeStep[];
  partitions: number;
  compact: boolean;
  startFrom: 'earliest' | 'latest';
  /** Upper bound on the distinct topics a templated output may create. */
  maxTopics: number;
}

/** The shape of a source value, for checking field paths when the file is loaded. */
export type Shape =
  | { kind: 'scalar' }
  | { kind: 'any' }
  | { kind: 'array'; items: Shape }
  | { kind: 'record'; name: string; fields: Record<string, Shape> };

const SCALAR: Shape = { kind: 'scalar' };
const record = (name: string, fields: Record<string, Shape>): Shape => ({ kind: 'record', name, fields });

/** The JSON payload of `orders.events` (docs/asyncapi.yaml, OrderEventPayload). */
export const ORDER_EVENT_SHAPE: Shape = record('OrderEvent', {
  type: SCALAR,
  orderId: SCALAR,
  customerId: SCALAR,
  status: SCALAR,
  expiresAt: SCALAR,
  occurredAt: SCALAR,
  items: {
    kind: 'array',
    items: record('OrderLine', {
      sku: SCALAR,
      qty: SCALAR,
      allocations: { kind: 'array', items: record('Allocation', { locationId: SCALAR, qty: SCALAR }) },
    }),
  },
});

/**
 * The shape of an Avro schema (parsed .avsc JSON). Nullable unions (`["null", X]`) are X; other
 * unions and maps accept any path below them.
 */
export function avroShape(schema: unknown, named: Map<string, Shape> = new Map()): Shape {
  if (typeof schema === 'string') {
    if (['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'].includes(schema)) return SCALAR;
    return named.get(schema) ?? named.get(schema.split('.').pop() ?? schema) ?? { kind: 'any' };
  }
  if (Array.isArray(schema)) {
    const branches = schema.filter((b) => b !== 'null');
    return branches.length === 1 ? avroShape(branches[0], named) : { kind: 'any' };
  }
  if (schema && typeof schema === 'object') {
    const s = schema as { type?: unknown; name?: unknown; namespace?: unknown; fields?: unknown; items?: unknown };
    if (s.type === 'record' && Array.isArray(s.fields)) {
      const name = String(s.name);
      const shape: { kind: 'record'; name: string; fields: Record<string, Shape> } = { kind: 'record', name, fields: {} };
      named.set(name, shape);
      if (typeof s.namespace === 'string') named.set(`${s.namespace}.${name}`, shape);
      for (const f of s.fields as Array<{ name: string; type: unknown }>) shape.fields[f.name] = avroShape(f.type, named);
      return shape;
    }
    if (s.type === 'array') return { kind: 'array', items: avroShape(s.items, named) };
    if (s.type === 'enum' || s.type === 'fixed') return SCALAR;
    if (s.type === 'map') return { kind: 'any' };
    return avroShape(s.type, named);
  }
  return { kind: 'any' };
}

// ------------------------------------------------------------------------------------ raw schema

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const scalarList = z.array(scalar).min(1, 'must list at least one value');
const CONDITION_HELP = 'must be a value, a list of values, {not: value or list}, {prefix: "text"} or {exists: true|false}';
const conditionSchema = z.union(
  [scalar, scalarList, z.strictObject({ not: z.union([scalar, scalarList]) }), z.strictObject({ prefix: z.string().min(1) }), z.strictObject({ exists: z.boolean() })],
  { error: CONDITION_HELP },
);
const explodeStepSchema = z.strictObject({
  path: z.string({ error: 'must be the path of a list field, e.g. locations' }).min(1, 'must be the path of a list field, e.g. locations'),
  as: z
    .string({ error: 'must be a name such as location' })
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a name of letters, digits and _ (not starting with a digit), such as location'),
});
const wholeNumber = (min: number, max: number) =>
  z.number({ error: `must be a whole number from ${min} to ${max}` }).int(`must be a whole number from ${min} to ${max}`).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const mappingSchema = z.strictObject({
  name: z
    .string({ error: 'is required: a name of a-z, 0-9, . _ - (it names the consumer group)' })
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be 1-63 characters of a-z, 0-9, . _ - starting with a letter or digit'),
  description: z.string().optional(),
  source: z.enum(SOURCE_TOPICS, { error: `is required: one of ${SOURCE_TOPICS.join(', ')}` }),
  output: z.string({ error: 'is required: the output topic, e.g. wms.levels or wms.levels.{location.locationId}' }).min(1, 'must not be empty'),
  format: z.enum(FORMATS, { error: `must be one of ${FORMATS.join(', ')}` }).default('json'),
  key: z.string({ error: 'must be a field path or a template, e.g. sku or {sku}@{location.locationId}' }).min(1, 'must not be empty').default('$key'),
  fields: z
    .record(z.string(), z.string({ error: 'must be the output field name (a string)' }).min(1, 'must be the output field name'), {
      error: 'must map source field paths to output names, e.g. {sku: itemCode}',
    })
    .optional(),
  filter: z.record(z.string(), conditionSchema, { error: 'must map field paths to conditions, e.g. {location.locationId: [WH-1, WH-2]}' }).optional(),
  explode: z.union([explodeStepSchema, z.array(explodeStepSchema)], { error: 'must be {path: <list field>, as: <name>} or a list of them' }).optional(),
  partitions: wholeNumber(1, 1000).default(6),
  compact: z.boolean({ error: 'must be true or false' }).optional(),
  startFrom: z.enum(['earliest', 'latest'], { error: 'must be earliest or latest' }).default('earliest'),
  maxTopics: wholeNumber(1, 10_000).default(100),
});

const fileSchema = z.strictObject(
  {
    version: z.literal(1, { error: 'must be 1' }).optional(),
    mappings: z.array(mappingSchema, { error: (issue) => (issue.input === undefined ? 'is required: a list of mappings' : 'must be a list of mappings') }),
  },
  { error: 'the file must be a YAML mapping with a `mappings:` list' },
);

type RawMapping = z.output<typeof mappingSchema>;

// ------------------------------------------------------------------------------------ errors

/** A mapping file that cannot be used; `message` is one line naming the mapping and field. */
export class MappingFileError extends Error {
  constructor(
    message: string,
    readonly mapping: string | undefined,
    readonly field: string | undefined,
  ) {
    super(message);
    this.name = 'MappingFileError';
  }
}

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

function mappingLabel(raw: unknown, index: number): string {
  const name = (raw as { name?: unknown } | null)?.name;
  return typeof name === 'string' && name ? `mapping "${name}" (#${index + 1})` : `mapping #${index + 1}`;
}

function fail(file: string, rawMappings: unknown, index: number | undefined, field: string | undefined, message: string): never {
  const raw = index === undefined || !Array.isArray(rawMappings) ? undefined : rawMappings[index];
  const where = index === undefined ? '' : `${mappingLabel(raw, index)}: `;
  const name = (raw as { name?: unknown } | undefined)?.name;
  throw new MappingFileError(
    `${file}: ${where}${field ? `${field}: ` : ''}${message}`.replace(/\s*\n\s*/g, ' '),
    typeof name === 'string' ? name : undefined,
    field,
  );
}

// ------------------------------------------------------------------------------------ paths

class PathError extends Error {}

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INDEX = /^\d+$/;

/** Parses `a.b.0.c`, `$key`, `$topic`, `$partition`, `$offset`, `$timestamp` or `$header.<name>`. */
export function parsePath(text: string): Path {
  const t = text.trim();
  if (t.startsWith('$header.')) {
    const name = t.slice('$header.'.length);
    if (!name) throw new PathError('$header. needs a header name, e.g. $header.eventType');
    return { kind: 'header', name, text: t };
  }
  if (t.startsWith('$')) {
    const field = t.slice(1);
    if ((META_FIELDS as readonly string[]).includes(field)) return { kind: 'meta', field: field as MetaField, text: t };
    throw new PathError(`${JSON.stringify(t)} is not known: use $key, $topic, $partition, $offset, $timestamp or $header.<name>`);
  }
  const segments = t.split('.');
  if (!t || !segments.every((s, i) => SEGMENT.test(s) || (i > 0 && INDEX.test(s)))) {
    throw new PathError(`${JSON.stringify(text)} is not a field path (names separated by dots, e.g. location.locationId)`);
  }
  return { kind: 'value', segments, text: t };
}

function describeFields(shape: Shape & { kind: 'record' }): string {
  return Object.keys(shape.fields).join(', ');
}

/** Checks a value path against the record shape in scope; returns the shape it points at. */
function checkPath(path: Path, scope: Shape & { kind: 'record' }, source: string): Shape {
  if (path.kind !== 'value') return { kind: 'any' };
  let at: Shape = scope;
  let walked = '';
  for (const seg of path.segments) {
    const here = walked ? `"${walked}"` : source;
    if (at.kind === 'any') return at;
    if (at.kind === 'scalar') throw new PathError(`${here} is a single value, it has no field "${seg}"`);
    if (at.kind === 'array') {
      if (!INDEX.test(seg)) throw new PathError(`${here} is a list: explode it (explode: {path: ${walked}, as: <name>}) or pick an element (${walked}.0.${seg})`);
      at = at.items;
    } else {
      const next: Shape | undefined = at.fields[seg];
      if (!next) throw new PathError(`${here} has no field "${seg}" (fields: ${describeFields(at)})`);
      at = next;
    }
    walked = walked ? `${walked}.${seg}` : seg;
  }
  return at;
}

// ------------------------------------------------------------------------------------ templates

const TOPIC_LITERAL = /^[A-Za-z0-9._-]*$/;

/** `wms.levels.{location.locationId}`: literal text with `{path}` placeholders. */
export function parseTemplate(text: string, { topic }: { topic: boolean }): Template {
  const parts: TemplatePart[] = [];
  let rest = text;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    const close = rest.indexOf('}');
    if (close !== -1 && (open === -1 || close < open)) throw new PathError(`"}" without "{" in ${JSON.stringify(text)}`);
    if (open === -1) {
      parts.push({ literal: rest });
      break;
    }
    if (open > 0) parts.push({ literal: rest.slice(0, open) });
    if (close === -1) throw new PathError(`"{" without "}" in ${JSON.stringify(text)}`);
    const inner = rest.slice(open + 1, close);
    if (!inner.trim()) throw new PathError(`empty placeholder {} in ${JSON.stringify(text)}`);
    parts.push({ path: parsePath(inner) });
    rest = rest.slice(close + 1);
  }
  if (topic) {
    for (const p of parts) {
      if ('literal' in p && !TOPIC_LITERAL.test(p.literal)) {
        throw new PathError(`${JSON.stringify(text)}: a topic name may only contain A-Z, a-z, 0-9, . _ - besides {placeholders}`);
      }
    }
  }
  return { text, parts, isStatic: parts.every((p) => 'literal' in p) };
}

/** A key setting: a bare path (`sku`, `$key`) or a template (`{sku}@{location.locationId}`). */
function parseKey(text: string): Template {
  if (text.includes('{') || text.includes('}')) return parseTemplate(text, { topic: false });
  return { text, parts: [{ path: parsePath(text) }], isStatic: false };
}

/** Kafka's rule for topic names. */
export function topicNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 249) return 'is longer than 249 characters';
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return 'may only contain A-Z, a-z, 0-9, . _ -';
  return undefined;
}

// ------------------------------------------------------------------------------------ compile

export interface ParseOptions {
  /** How the file is named in errors (its path). */
  file: string;
  /** The shape of each source's values (see avroShape and ORDER_EVENT_SHAPE). */
  shapes: Record<SourceTopic, Shape>;
  /** Topics a mapping must never write to (the platform's own). */
  reservedTopics: readonly string[];
}

function compileMapping(raw: RawMapping, opts: ParseOptions, at: (field: string | undefined, message: string) => never): Mapping {
  const guard = <T>(field: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof PathError) at(field, err.message);
      throw err;
    }
  };
  const root = opts.shapes[raw.source];
  if (root.kind !== 'record') at('source', `the shape of ${raw.source} is not a record`);
  const isAvro = AVRO_SOURCES.has(raw.source);
  if (raw.format === 'avro-as-is') {
    if (!isAvro) at('format', `avro-as-is needs an Avro source (${[...AVRO_SOURCES].join(' or ')}); ${raw.source} is JSON: use format json`);
    if (raw.fields) at('fields', 'avro-as-is copies the Avro record unchanged: renaming or selecting fields needs format json');
    if (raw.explode) at('explode', 'avro-as-is copies the Avro record unchanged: explode needs format json');
  }

  // Explode steps add named elements to the record in scope, one after another.
  const scope: { kind: 'record'; name: string; fields: Record<string, Shape> } = { kind: 'record', name: root.name, fields: { ...root.fields } };
  const explode: ExplodeStep[] = [];
  const steps = raw.explode === undefined ? [] : Array.isArray(raw.explode) ? raw.explode : [raw.explode];
  steps.forEach((step, i) => {
    const field = Array.isArray(raw.explode) ? `explode[${i}]` : 'explode';
    const path = guard(`${field}.path`, () => parsePath(step.path));
    if (path.kind !== 'value') at(`${field}.path`, 'must be a field of the record (a list), not $-metadata');
    const shape = guard(`${field}.path`, () => checkPath(path, scope, raw.source));
    if (shape.kind !== 'array' && shape.kind !== 'any') at(`${field}.path`, `"${path.text}" is not a list`);
    const replacesItself = path.segments.length === 1 && path.segments[0] === step.as;
    if (scope.fields[step.as] && !replacesItself) at(`${field}.as`, `"${step.as}" is already a field of the record; choose another name`);
    scope.fields[step.as] = shape.kind === 'array' ? shape.items : { kind: 'any' };
    explode.push({ path, as: step.as });
  });

  const output = guard('output', () => parseTemplate(raw.output, { topic: true }));
  for (const p of output.parts) if ('path' in p) guard('output', () => checkPath(p.path, scope, raw.source));
  if (output.isStatic) {
    const problem = topicNameProblem(raw.output);
    if (problem) at('output', `topic name ${JSON.stringify(raw.output)} ${problem}`);
    if (opts.reservedTopics.includes(raw.output)) at('output', `${raw.output} is a platform topic; a mapping writes to its own topics`);
  }
  const literalPrefix = output.parts[0] && 'literal' in output.parts[0] ? output.parts[0].literal : '';
  if (!output.isStatic && literalPrefix === '') {
    at('output', 'a templated topic name must start with literal text (e.g. wms.levels.{location.locationId}), so it cannot become a platform topic');
  }

  const key = guard('key', () => parseKey(raw.key));
  for (const p of key.parts) if ('path' in p) guard('key', () => checkPath(p.path, scope, raw.source));

  let fields: Mapping['fields'];
  if (raw.fields) {
    const seen = new Map<string, string>();
    fields = Object.entries(raw.fields).map(([from, to]) => {
      const path = guard(`fields.${from}`, () => parsePath(from));
      guard(`fields.${from}`, () => checkPath(path, scope, raw.source));
      const earlier = seen.get(to);
      if (earlier !== undefined) at(`fields.${from}`, `output name "${to}" is already used by ${earlier}`);
      seen.set(to, from);
      return { from: path, to };
    });
    if (fields.length === 0) at('fields', 'must name at least one field (leave it out to keep every field)');
  }

  const filter: Condition[] = Object.entries(raw.filter ?? {}).map(([p, cond]): Condition => {
    const path = guard(`filter.${p}`, () => parsePath(p));
    guard(`filter.${p}`, () => checkPath(path, scope, raw.source));
    if (Array.isArray(cond)) return { path, op: 'in', values: cond };
    if (cond !== null && typeof cond === 'object') {
      if ('not' in cond) return { path, op: 'notIn', values: Array.isArray(cond.not) ? cond.not : [cond.not] };
      if ('prefix' in cond) return { path, op: 'prefix', value: cond.prefix };
      return { path, op: 'exists', value: cond.exists };
    }
    return { path, op: 'in', values: [cond] };
  });

  const compact = raw.compact ?? raw.source === 'stock.levels';
  return {
    name: raw.name,
    source: raw.source,
    output,
    format: raw.format,
    key,
    fields,
    filter,
    explode,
    partitions: raw.partitions,
    compact,
    startFrom: raw.startFrom,
    maxTopics: raw.maxTopics,
  };
}

/**
 * Parses and validates a mapping file. Throws MappingFileError with one line such as
 * `mappings.yaml: mapping "wms-levels" (#2): fields.skuu: stock.levels has no field "skuu" (fields: sku, ...)`.
 */
export function parseMappingFile(text: string, opts: ParseOptions): Mapping[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false });
  } catch (err) {
    fail(opts.file, undefined, undefined, undefined, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) fail(opts.file, undefined, undefined, undefined, 'the file is empty: it needs a `mappings:` list');
  const rawMappings = (doc as { mappings?: unknown } | null)?.mappings;
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path;
    let message = issue.message;
    let rest = path;
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys?: string[] }).keys ?? [];
      const where = path.length >= 2 && path[0] === 'mappings' ? 'mapping' : path.length ? 'entry' : 'file';
      const allowed = where === 'mapping' ? Object.keys(mappingSchema.shape).join(', ') : where === 'file' ? 'version, mappings' : undefined;
      message = `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}${allowed ? ` (expected ${allowed})` : ''}`;
    }
    if (path[0] === 'mappings' && typeof path[1] === 'number') {
      rest = path.slice(2);
      fail(opts.file, rawMappings, path[1], rest.length ? fieldPath(rest) : undefined, message);
    }
    fail(opts.file, rawMappings, undefined, rest.length ? fieldPath(rest) : undefined, message);
  }
  const names = new Map<string, number>();
  return parsed.data.mappings.map((raw, index) => {
    const at = (field: string | undefined, message: string): never => fail(opts.file, rawMappings, index, field, message);
    const earlier = names.get(raw.name);
    if (earlier !== undefined) at('name', `"${raw.name}" is also the name of mapping #${earlier + 1}; names must be unique`);
    names.set(raw.name, index);
    return compileMapping(raw, opts, at);
  });
}
