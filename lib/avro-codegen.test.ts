import fs from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import {
  AVRO_SCHEMA_DIR,
  AvroCodegenError,
  enumSymbolsConstName,
  GENERATED_TYPES_FILE,
  generateTypes,
  readAvroSchemaFiles,
  REGENERATE_COMMAND,
  type AvroSchemaFile,
} from './avro-codegen.ts';
import { PROJECT_ROOT } from './config.ts';

const schemaFiles = readAvroSchemaFiles(PROJECT_ROOT);

function schemaOf(name: string): Record<string, unknown> {
  const found = schemaFiles.find((f) => f.file === `${AVRO_SCHEMA_DIR}/${name}.avsc`);
  if (!found) throw new Error(`${name}.avsc not found`);
  return structuredClone(found.schema) as Record<string, unknown>;
}

function fieldOf(schema: Record<string, unknown>, name: string): Record<string, unknown> {
  const field = (schema.fields as Record<string, unknown>[]).find((f) => f.name === name);
  if (!field) throw new Error(`no field ${name}`);
  return field;
}

/** Syntax errors of a TypeScript module text (what `tsc` would refuse before type checking). */
function syntaxErrors(source: string): string[] {
  const out = ts.transpileModule(source, { reportDiagnostics: true, compilerOptions: { target: ts.ScriptTarget.ES2022 } });
  return (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

const record = (name: string, fields: object[], extra: object = {}) => ({
  type: 'record',
  name,
  namespace: 'dev.invsync.test',
  fields,
  ...extra,
});

describe('Avro schemas (schemas/avro)', () => {
  it('has the six schema files', () => {
    expect(schemaFiles.map((f) => f.file)).toEqual([
      'schemas/avro/LocationLevel.avsc',
      'schemas/avro/StockAdjustment.avsc',
      'schemas/avro/StockAlert.avsc',
      'schemas/avro/StockDelta.avsc',
      'schemas/avro/StockLevel.avsc',
      'schemas/avro/StockMovement.avsc',
    ]);
  });

  it.each(schemaFiles.map((f) => [f.file, f.schema] as const))('%s parses with avsc on its own', (_file, schema) => {
    const type = avro.Type.forSchema(schema as avro.Schema);
    expect(type.name).toMatch(/^dev\.invsync\.stock\./);
  });

  it.each(schemaFiles.map((f) => [f.file, f.schema] as const))('%s documents every record, enum and field', (_file, schema) => {
    const missing: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}[${i}]`));
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      if ((n.type === 'record' || n.type === 'enum') && typeof n.doc !== 'string') missing.push(`${where} (${String(n.name)})`);
      if (n.type === 'record') {
        for (const f of n.fields as Record<string, unknown>[]) {
          if (typeof f.doc !== 'string' || f.doc.trim() === '') missing.push(`${where}.${String(f.name)}`);
          walk(f.type, `${where}.${String(f.name)}`);
        }
      }
      if (n.type === 'array') walk(n.items, `${where}.items`);
    };
    walk(schema, '$');
    expect(missing).toEqual([]);
  });

  it('defines LocationLevel inline in StockDelta and StockLevel exactly as LocationLevel.avsc does', () => {
    const standalone = schemaOf('LocationLevel');
    const inDelta = (fieldOf(schemaOf('StockDelta'), 'location').type as unknown[])[1];
    const inLevel = (fieldOf(schemaOf('StockLevel'), 'locations').type as { items: unknown }).items;
    expect(inDelta, 'StockDelta.avsc: the inline LocationLevel differs from LocationLevel.avsc').toStrictEqual(standalone);
    expect(inLevel, 'StockLevel.avsc: the inline LocationLevel differs from LocationLevel.avsc').toStrictEqual(standalone);
  });

  it('keeps commitTs a plain long (no logical type), so it decodes to a JS number', () => {
    for (const name of ['StockDelta', 'StockLevel']) expect(fieldOf(schemaOf(name), 'commitTs').type).toBe('long');
    const type = avro.Type.forSchema(schemaOf('StockDelta') as avro.Schema);
    const value = {
      sku: 'SKU-1',
      available: 1,
      previousAvailable: null,
      onHand: 1,
      reserved: 0,
      safetyStock: 0,
      version: 2 ** 40,
      deleted: false,
      commitTs: Date.parse('2026-11-21T04:00:00.123Z'),
      locationId: null,
      location: null,
      channels: { 'web-eu': 1 },
    };
    expect(type.fromBuffer(type.toBuffer(value))).toEqual(value);
  });
});

describe('generated types (drift check)', () => {
  it(`${GENERATED_TYPES_FILE} is up to date with ${AVRO_SCHEMA_DIR}/*.avsc`, () => {
    const target = path.join(PROJECT_ROOT, GENERATED_TYPES_FILE);
    const committed = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    const regenerated = generateTypes(schemaFiles);
    // Not toBe on the texts: the message must say what to do, not dump two files.
    if (committed !== regenerated) {
      expect.fail(
        `${GENERATED_TYPES_FILE} is out of date with ${AVRO_SCHEMA_DIR}/*.avsc (or was edited by hand). ` +
          `Run \`${REGENERATE_COMMAND}\` and commit the result.`,
      );
    }
  });

  it('is valid TypeScript and says how to regenerate', () => {
    const text = generateTypes(schemaFiles);
    expect(syntaxErrors(text)).toEqual([]);
    expect(text).toContain('GENERATED FILE, DO NOT EDIT');
    expect(text).toContain(REGENERATE_COMMAND);
    for (const f of schemaFiles) expect(text).toContain(f.file);
  });

  it('does not depend on the order of the input files', () => {
    expect(generateTypes([...schemaFiles].reverse())).toBe(generateTypes(schemaFiles));
  });

  it('notices a schema change: a changed .avsc generates different output', () => {
    const delta = schemaOf('StockDelta');
    (delta.fields as object[]).push({ name: 'channel', type: ['null', 'string'], default: null, doc: 'test' });
    const modified: AvroSchemaFile[] = schemaFiles.map((f) =>
      f.file.endsWith('/StockDelta.avsc') ? { file: f.file, schema: delta } : f,
    );
    const changed = generateTypes(modified);
    expect(changed).not.toBe(generateTypes(schemaFiles));
    expect(changed).toContain('  channel: string | null;');
  });

  it('refuses to generate when an inline LocationLevel drifts from LocationLevel.avsc', () => {
    const level = schemaOf('StockLevel');
    const items = (fieldOf(level, 'locations').type as { items: { fields: object[] } }).items;
    items.fields.push({ name: 'bin', type: 'string', doc: 'drift' });
    const drifted = schemaFiles.map((f) => (f.file.endsWith('/StockLevel.avsc') ? { file: f.file, schema: level } : f));
    expect(() => generateTypes(drifted)).toThrow(/LocationLevel is defined differently/);
  });
});

describe('generateTypes', () => {
  const one = (schema: object) => generateTypes([{ file: 'schemas/avro/T.avsc', schema }]);

  it('maps primitives and null unions', () => {
    const text = one(
      record('Prims', [
        { name: 's', type: 'string' },
        { name: 'i', type: 'int' },
        { name: 'l', type: 'long' },
        { name: 'f', type: 'float' },
        { name: 'd', type: 'double' },
        { name: 'b', type: 'boolean' },
        { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
        { name: 'maybe', type: ['null', 'int'], default: null },
        { name: 'maybeLast', type: ['string', 'null'] },
      ]),
    );
    expect(text).toContain(
      [
        'export interface Prims {',
        '  s: string;',
        '  i: number;',
        '  l: number;',
        '  f: number;',
        '  d: number;',
        '  b: boolean;',
        '  ts: number;',
        '  maybe: number | null;',
        '  maybeLast: string | null;',
        '}',
      ].join('\n'),
    );
    expect(syntaxErrors(text)).toEqual([]);
  });

  it('turns an enum into a string union and a const array of its symbols', () => {
    const text = one(
      record('Holder', [
        { name: 'kind', type: { type: 'enum', name: 'Colour', symbols: ['RED', 'GREEN'], doc: 'A colour.' } },
        { name: 'maybeKind', type: ['null', 'Colour'], default: null },
      ]),
    );
    expect(text).toContain("export type Colour = 'RED' | 'GREEN';");
    expect(enumSymbolsConstName('AdjustmentKind')).toBe('ADJUSTMENT_KIND_SYMBOLS');
    expect(text).toContain("export const COLOUR_SYMBOLS = ['RED', 'GREEN'] as const satisfies readonly Colour[];");
    expect(text).toContain('  kind: Colour;\n  maybeKind: Colour | null;');
    expect(text).toContain('/**\n * A colour.\n *\n * Avro enum dev.invsync.test.Colour.\n */');
  });

  it('maps arrays of records, nested records and references to them', () => {
    const text = one(
      record('Outer', [
        {
          name: 'items',
          type: { type: 'array', items: { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'int', doc: 'An x.' }] } },
        },
        { name: 'first', type: ['null', 'Inner'], default: null },
        { name: 'qualified', type: 'dev.invsync.test.Inner' },
        { name: 'maybes', type: { type: 'array', items: ['null', 'string'] } },
        { name: 'byName', type: { type: 'map', values: 'long' } },
      ]),
    );
    expect(text).toContain('export interface Inner {\n  /** An x. */\n  x: number;\n}');
    expect(text).toContain(
      '  items: Inner[];\n  first: Inner | null;\n  qualified: Inner;\n  maybes: (string | null)[];\n  byName: Record<string, number>;',
    );
    // Alphabetical order of named types; SCHEMA_FILES lists top-level records only.
    expect(text.indexOf('export interface Inner')).toBeLessThan(text.indexOf('export interface Outer'));
    expect(text).toContain("export const SCHEMA_FILES = {\n  Outer: 'schemas/avro/T.avsc',\n} as const;");
    expect(syntaxErrors(text)).toEqual([]);
  });

  it('escapes comment terminators in docs', () => {
    const text = one(record('Doc', [{ name: 'a', type: 'int', doc: 'ends */ here' }]));
    expect(text).toContain('/** ends *\\/ here */');
    expect(syntaxErrors(text)).toEqual([]);
  });

  it('refuses what the types could not describe, naming the file', () => {
    expect(() => one(record('U', [{ name: 'u', type: ['null', 'int', 'string'] }]))).toThrow(AvroCodegenError);
    expect(() => one(record('U', [{ name: 'u', type: ['null', 'int', 'string'] }]))).toThrow(/schemas\/avro\/T\.avsc.*several non-null/);
    expect(() => one(record('R', [{ name: 'r', type: 'Nowhere' }]))).toThrow(/unknown type "Nowhere"/);
    expect(() => one({ type: 'enum', name: 'E', symbols: ['A'] })).toThrow(/top-level schema must be a record/);
    expect(() => one(record('D', [{ name: 'a', type: 'int' }, { name: 'a', type: 'int' }]))).toThrow(/duplicate field a/);
  });

  it('requires each file to be self-contained (no references to types defined in other files)', () => {
    const a = { file: 'schemas/avro/A.avsc', schema: record('A', [{ name: 'x', type: 'int' }]) };
    const b = { file: 'schemas/avro/B.avsc', schema: record('B', [{ name: 'a', type: 'A' }]) };
    expect(() => generateTypes([a, b])).toThrow(/B\.avsc.*unknown type "A"/);
  });
});
