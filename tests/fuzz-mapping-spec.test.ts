/**
 * Property-based fuzzing of the outbound mapping validator (connectors/outbound/domain/
 * mapping-spec.ts), pure: random YAML text, random YAML documents, and mutations of the example
 * mapping file. Whatever the input, `parseMappingFile` either returns mappings or throws a
 * MappingFileError (a clear message naming the file) — never another exception, never a hang.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../lib/config.ts';
import { TOPICS } from '../lib/topics.ts';
import { avroShape, MappingFileError, ORDER_EVENT_SHAPE, parseMappingFile, type ParseOptions } from '../connectors/outbound/domain/mapping-spec.ts';

const avsc = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'schemas', 'avro', `${name}.avsc`), 'utf8'));
const opts: ParseOptions = {
  file: 'fuzz.yaml',
  shapes: { 'stock.deltas': avroShape(avsc('StockDelta')), 'stock.levels': avroShape(avsc('StockLevel')), 'orders.events': ORDER_EVENT_SHAPE },
  reservedTopics: Object.values(TOPICS),
};
const example = YAML.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'connectors', 'mappings.example.yaml'), 'utf8')) as { version: number; mappings: Array<Record<string, unknown>> };
const SEED = 20261130;

/** Parses; returns 'ok', or the MappingFileError message; any other throw fails the property. */
function outcome(text: string): string {
  try {
    parseMappingFile(text, opts);
    return 'ok';
  } catch (err) {
    if (err instanceof MappingFileError) {
      expect(err.message).toContain('fuzz.yaml');
      return err.message;
    }
    throw new Error(`parseMappingFile threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}\n--- input ---\n${text.slice(0, 2000)}`);
  }
}

// Values that stress a mapping's fields: paths, templates, topic names, odd YAML scalars.
const hostile = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '.', '..', 'a..b', '$header.', '$header.x.y', 'locations[0]', 'items.*', '{', '}', '{{x}}', '{location.locationId', 'wms.{}', 'stock.deltas', 'inventory.dlq', '__proto__', 'constructor', 'a'.repeat(300), '\u0000', 'x\ny'),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, hostile, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('name', 'source', 'output', 'key', 'fields', 'filter', 'explode', 'format', 'path', 'as')), tie('v'), { maxKeys: 5 })),
})).v;

describe('outbound mapping validator under fuzz', () => {
  it('random text: a mapping list or a MappingFileError, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 400 })), (text) => {
        outcome(text);
      }),
      { seed: SEED, numRuns: 150 },
    );
  }, 60_000);

  it('random YAML documents: a mapping list or a MappingFileError', () => {
    fc.assert(
      fc.property(value, (doc) => {
        outcome(YAML.stringify({ version: 1, mappings: [doc] }));
        outcome(YAML.stringify(doc));
      }),
      { seed: SEED, numRuns: 150 },
    );
  }, 60_000);

  it('the example file with one field of one mapping replaced: accepted or refused with a clear error', () => {
    const fields = ['name', 'source', 'output', 'key', 'fields', 'filter', 'explode', 'format', 'version', 'extra'];
    fc.assert(
      fc.property(fc.nat(example.mappings.length - 1), fc.constantFrom(...fields), value, (i, field, v) => {
        const doc = structuredClone(example);
        if (field === 'version') (doc as Record<string, unknown>).version = v;
        else doc.mappings[i]![field] = v;
        const result = outcome(YAML.stringify(doc));
        // Breaking a required field of a valid file is refused, naming that mapping.
        if (['name', 'source', 'output'].includes(field) && (v === null || v === '')) expect(result).not.toBe('ok');
      }),
      { seed: SEED, numRuns: 200 },
    );
  }, 60_000);

  it('the example file is valid (the properties above start from a good file)', () => {
    expect(outcome(YAML.stringify(example))).toBe('ok');
  });
});
