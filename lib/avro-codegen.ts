/**
 * Generates TypeScript types from Avro schemas (`schemas/avro/*.avsc` are the source of truth).
 * `generateTypes` is pure: it takes parsed schemas and returns the text of the generated module.
 * `readAvroSchemaFiles` is the one reader of the .avsc files, shared by the script
 * (`tools/cli/gen-avro-types.ts`, which writes the output) and the drift check
 * (`lib/avro-codegen.test.ts`, which regenerates and compares with the committed output), so
 * both see exactly the same input.
 *
 * The output describes values as `avsc` reads and writes them with its default options:
 * string → string; int, long, float, double → number (no logical types are applied, so a long
 * stays a JS number); boolean → boolean; bytes, fixed → Buffer; a union of null and one other
 * type → `T | null` (unwrapped); array → `T[]`; map → `Record<string, T>`; record → an interface
 * named after it; enum → a union of its symbols, plus a const array of the symbols.
 * Unions of several non-null branches are refused: `avsc` may wrap them, which these types
 * would not describe.
 *
 * Output is deterministic: named types in alphabetical order, fields in schema order.
 */

import fs from 'node:fs';
import path from 'node:path';

/** Where the schemas live and where the generated module goes, relative to the project root. */
export const AVRO_SCHEMA_DIR = 'schemas/avro';
export const GENERATED_TYPES_FILE = 'schemas/generated/avro-types.ts';

export interface AvroSchemaFile {
  /** Path of the .avsc file relative to the project root, with forward slashes. */
  file: string;
  /** The parsed JSON of the file. */
  schema: object;
}

export const REGENERATE_COMMAND = 'npx tsx tools/cli/gen-avro-types.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface NamedRecord {
  kind: 'record';
  fullName: string;
  name: string;
  doc: string | undefined;
  fields: { name: string; tsType: string; doc: string | undefined }[];
}

interface NamedEnum {
  kind: 'enum';
  fullName: string;
  name: string;
  doc: string | undefined;
  symbols: string[];
}

type Named = NamedRecord | NamedEnum;

const PRIMITIVES: Record<string, string> = {
  null: 'null',
  boolean: 'boolean',
  int: 'number',
  long: 'number',
  float: 'number',
  double: 'number',
  bytes: 'Buffer',
  string: 'string',
};

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class AvroCodegenError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'AvroCodegenError';
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deterministic JSON: object keys sorted, so two definitions compare regardless of key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function fullNameOf(name: string, namespace: string | undefined): string {
  if (name.includes('.')) return name;
  return namespace ? `${namespace}.${name}` : name;
}

function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

/** Collects the named types of all files; `collect` returns a file's top-level named type. */
class Collector {
  readonly named = new Map<string, Named>();
  /** Canonical JSON of each named type's definition, to detect conflicting redefinitions. */
  private readonly definitions = new Map<string, { file: string; json: string }>();
  /** Named types that stand for a Buffer (fixed). */
  private readonly fixed = new Set<string>();
  /** Full names defined in the current file: each file must be self-contained. */
  private definedInFile = new Set<string>();
  private file = '';

  collect(file: string, schema: unknown): Named {
    this.file = file;
    this.definedInFile = new Set();
    this.typeOf(schema, undefined, '$');
    const top = isObject(schema) && typeof schema.name === 'string'
      ? this.named.get(fullNameOf(schema.name, typeof schema.namespace === 'string' ? schema.namespace : undefined))
      : undefined;
    if (!top) throw new AvroCodegenError(file, 'the top-level schema must be a named record');
    return top;
  }

  private fail(path: string, message: string): never {
    throw new AvroCodegenError(this.file, `${path}: ${message}`);
  }

  /** Returns the TypeScript type for an Avro type, registering any named types it defines. */
  private typeOf(schema: unknown, namespace: string | undefined, path: string): string {
    if (typeof schema === 'string') {
      const primitive = PRIMITIVES[schema];
      if (primitive) return primitive;
      const fullName = [fullNameOf(schema, namespace), schema].find((n) => this.definedInFile.has(n));
      if (fullName === undefined) {
        this.fail(path, `unknown type ${JSON.stringify(schema)} (define a named type in the same file before its first use)`);
      }
      if (this.fixed.has(fullName)) return 'Buffer';
      return this.named.get(fullName)!.name;
    }
    if (Array.isArray(schema)) return this.unionOf(schema, namespace, path);
    if (!isObject(schema)) this.fail(path, `not a valid Avro type: ${JSON.stringify(schema)}`);
    const type = schema.type;
    switch (type) {
      case 'record':
      case 'error':
        return this.record(schema, namespace, path);
      case 'enum':
        return this.enumType(schema, namespace, path);
      case 'array':
        return `${this.wrapForArray(this.typeOf(schema.items, namespace, `${path}.items`))}[]`;
      case 'map':
        return `Record<string, ${this.typeOf(schema.values, namespace, `${path}.values`)}>`;
      case 'fixed':
        this.fixed.add(this.register(schema, namespace, path).fullName);
        return 'Buffer';
      default:
        // A primitive written as an object (`{"type": "long", "logicalType": ...}`): the
        // logical type is not applied by avsc's default options, so the underlying type counts.
        if (typeof type === 'string' && PRIMITIVES[type]) return PRIMITIVES[type];
        return this.fail(path, `unsupported type ${JSON.stringify(type)}`);
    }
  }

  private wrapForArray(tsType: string): string {
    return tsType.includes(' ') ? `(${tsType})` : tsType;
  }

  private unionOf(branches: Json[], namespace: string | undefined, path: string): string {
    const types = branches.map((b, i) => this.typeOf(b, namespace, `${path}[${i}]`));
    const nonNull = types.filter((t) => t !== 'null');
    if (types.length === 0) this.fail(path, 'empty union');
    if (nonNull.length > 1) {
      this.fail(path, `unions of several non-null types are not supported (${types.join(' | ')})`);
    }
    return types.length === nonNull.length ? nonNull[0]! : nonNull.length === 0 ? 'null' : `${nonNull[0]!} | null`;
  }

  /** Registers a named type; a repeated definition must be identical to the first one. */
  private register(schema: JsonObject, namespace: string | undefined, path: string): { fullName: string; namespace: string | undefined; isNew: boolean } {
    const name = schema.name;
    if (typeof name !== 'string' || !name.split('.').every((part) => IDENTIFIER.test(part))) {
      this.fail(path, `invalid or missing name ${JSON.stringify(name)}`);
    }
    const ownNamespace = typeof schema.namespace === 'string' && schema.namespace !== '' ? schema.namespace : namespace;
    const fullName = fullNameOf(name, ownNamespace);
    const innerNamespace = fullName.includes('.') ? fullName.slice(0, fullName.lastIndexOf('.')) : undefined;
    const json = canonical({ ...schema, name: fullName, namespace: innerNamespace ?? null });
    if (this.definedInFile.has(fullName)) this.fail(path, `${fullName} is defined twice`);
    this.definedInFile.add(fullName);
    const previous = this.definitions.get(fullName);
    if (previous) {
      if (previous.json !== json) {
        this.fail(path, `${fullName} is defined differently here than in ${previous.file}; keep every definition identical`);
      }
      return { fullName, namespace: innerNamespace, isNew: false };
    }
    const tsName = shortName(fullName);
    for (const other of [...this.named.values(), ...[...this.fixed].map((f) => ({ fullName: f, name: shortName(f) }))]) {
      if (other.name === tsName) this.fail(path, `${fullName} and ${other.fullName} would both be named ${tsName} in TypeScript`);
    }
    this.definitions.set(fullName, { file: this.file, json });
    return { fullName, namespace: innerNamespace, isNew: true };
  }

  private record(schema: JsonObject, namespace: string | undefined, path: string): string {
    const { fullName, namespace: inner, isNew } = this.register(schema, namespace, path);
    const name = shortName(fullName);
    if (!isNew) return name;
    if (!Array.isArray(schema.fields)) this.fail(path, `record ${fullName} has no fields array`);
    // Register before the fields so that a recursive reference resolves.
    const record: NamedRecord = { kind: 'record', fullName, name, doc: docOf(schema), fields: [] };
    this.named.set(fullName, record);
    const seen = new Set<string>();
    for (const [i, field] of schema.fields.entries()) {
      const fieldPath = `${path}.fields[${i}]`;
      if (!isObject(field) || typeof field.name !== 'string' || !IDENTIFIER.test(field.name)) {
        this.fail(fieldPath, `invalid field ${JSON.stringify(field)}`);
      }
      if (seen.has(field.name)) this.fail(fieldPath, `duplicate field ${field.name}`);
      seen.add(field.name);
      const tsType = this.typeOf(field.type, inner, `${fieldPath}(${field.name})`);
      record.fields.push({ name: field.name, tsType, doc: docOf(field) });
    }
    return name;
  }

  private enumType(schema: JsonObject, namespace: string | undefined, path: string): string {
    const { fullName, isNew } = this.register(schema, namespace, path);
    const name = shortName(fullName);
    if (!isNew) return name;
    const symbols = schema.symbols;
    if (!Array.isArray(symbols) || symbols.length === 0 || !symbols.every((s) => typeof s === 'string' && IDENTIFIER.test(s))) {
      this.fail(path, `enum ${fullName} needs a non-empty array of symbols`);
    }
    if (new Set(symbols).size !== symbols.length) this.fail(path, `enum ${fullName} has duplicate symbols`);
    this.named.set(fullName, { kind: 'enum', fullName, name, doc: docOf(schema), symbols: symbols as string[] });
    return name;
  }
}

function docOf(schema: JsonObject): string | undefined {
  return typeof schema.doc === 'string' && schema.doc.trim() !== '' ? schema.doc.trim() : undefined;
}

/** A JSDoc block at `indent`; `*\/` inside the text is escaped. */
function jsDoc(lines: string[], indent: string): string[] {
  const text = lines.flatMap((l) => l.split(/\r?\n/)).map((l) => l.replace(/\*\//g, '*\\/').trimEnd());
  if (text.length === 0) return [];
  if (text.length === 1) return [`${indent}/** ${text[0]} */`];
  return [`${indent}/**`, ...text.map((l) => (l === '' ? `${indent} *` : `${indent} * ${l}`)), `${indent} */`];
}

/** UPPER_SNAKE_CASE of a PascalCase name: AdjustmentKind → ADJUSTMENT_KIND. */
function constantCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
}

/** The name of the const array holding an enum's symbols: AdjustmentKind → ADJUSTMENT_KIND_SYMBOLS. */
export function enumSymbolsConstName(enumName: string): string {
  return `${constantCase(enumName)}_SYMBOLS`;
}

/**
 * Returns the text of the generated TypeScript module for the given schema files. The order of
 * `schemas` does not matter. Throws AvroCodegenError naming the file for anything it cannot
 * represent, and when a named type is defined differently in two places.
 */
export function generateTypes(schemas: AvroSchemaFile[]): string {
  const files = [...schemas].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const collector = new Collector();
  const topLevel = new Map<string, string>();
  for (const { file, schema } of files) {
    const top = collector.collect(file, schema);
    if (top.kind !== 'record') throw new AvroCodegenError(file, 'the top-level schema must be a record');
    const other = topLevel.get(top.name);
    if (other !== undefined) throw new AvroCodegenError(file, `record ${top.name} is already the top-level record of ${other}`);
    topLevel.set(top.name, file);
  }

  const out: string[] = [];
  out.push(
    ...jsDoc(
      [
        'GENERATED FILE, DO NOT EDIT. TypeScript types for the platform\'s Avro schemas.',
        '',
        'Generated by tools/cli/gen-avro-types.ts (lib/avro-codegen.ts) from:',
        ...files.map((f) => `  ${f.file}`),
        '',
        'The .avsc files are the source of truth. After changing one, regenerate with',
        `  ${REGENERATE_COMMAND}`,
        'A unit test (lib/avro-codegen.test.ts) fails while this file is out of date.',
      ],
      '',
    ),
    '',
  );

  const named = [...collector.named.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const n of named) {
    if (n.kind === 'enum') {
      out.push(...jsDoc([...(n.doc ? [n.doc, ''] : []), `Avro enum ${n.fullName}.`], ''));
      out.push(`export type ${n.name} = ${n.symbols.map((s) => `'${s}'`).join(' | ')};`, '');
      out.push(...jsDoc([`The symbols of ${n.name}, in schema order.`], ''));
      out.push(
        `export const ${enumSymbolsConstName(n.name)} = [${n.symbols.map((s) => `'${s}'`).join(', ')}] as const satisfies readonly ${n.name}[];`,
        '',
      );
    } else {
      out.push(...jsDoc([...(n.doc ? [n.doc, ''] : []), `Avro record ${n.fullName}.`], ''));
      out.push(`export interface ${n.name} {`);
      for (const f of n.fields) {
        out.push(...jsDoc(f.doc ? [f.doc] : [], '  '));
        out.push(`  ${f.name}: ${f.tsType};`);
      }
      out.push('}', '');
    }
  }

  out.push(...jsDoc(['Top-level record name → its .avsc file, relative to the project root.'], ''));
  out.push('export const SCHEMA_FILES = {');
  for (const [name, file] of [...topLevel].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    out.push(`  ${name}: '${file.replace(/\\/g, '/').replace(/'/g, "\\'")}',`);
  }
  out.push('} as const;', '');
  out.push('export type AvroRecordName = keyof typeof SCHEMA_FILES;', '');
  return out.join('\n');
}

/** Reads and parses every `*.avsc` in `schemas/avro/`, in file-name order. */
export function readAvroSchemaFiles(projectRoot: string): AvroSchemaFile[] {
  const dir = path.join(projectRoot, AVRO_SCHEMA_DIR);
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.avsc'))
    .sort()
    .map((name) => {
      const file = `${AVRO_SCHEMA_DIR}/${name}`;
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      try {
        return { file, schema: JSON.parse(text) as object };
      } catch (err) {
        throw new AvroCodegenError(file, `not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
}
