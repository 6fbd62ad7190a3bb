import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import { TOPICS } from '../../../lib/topics.ts';
import { avroShape, MappingFileError, ORDER_EVENT_SHAPE, parseMappingFile, type ParseOptions } from './mapping-spec.ts';

const avsc = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'schemas', 'avro', `${name}.avsc`), 'utf8'));

const opts: ParseOptions = {
  file: 'mappings.yaml',
  shapes: { 'stock.deltas': avroShape(avsc('StockDelta')), 'stock.levels': avroShape(avsc('StockLevel')), 'orders.events': ORDER_EVENT_SHAPE },
  reservedTopics: Object.values(TOPICS),
};

function errorOf(yaml: string): MappingFileError {
  try {
    parseMappingFile(yaml, opts);
  } catch (err) {
    if (err instanceof MappingFileError) return err;
    throw err;
  }
  throw new Error('expected the file to be refused');
}

const levels = (extra: string) => `mappings:\n  - name: wms\n    source: stock.levels\n    output: wms.levels\n${extra}`;

describe('parseMappingFile', () => {
  it('accepts the shipped example', () => {
    const text = fs.readFileSync(path.join(PROJECT_ROOT, 'connectors', 'mappings.example.yaml'), 'utf8');
    const mappings = parseMappingFile(text, opts);
    expect(mappings.map((m) => m.name)).toEqual(['wms-levels-by-location', 'wms-picks-by-location', 'erp-availability', 'erp-wh1-deltas']);
    const [wms, picks, erp, wh1] = mappings;
    expect(wms).toMatchObject({ source: 'stock.levels', format: 'json', compact: true, startFrom: 'earliest', partitions: 6 });
    expect(wms!.output.isStatic).toBe(false);
    expect(wms!.fields?.map((f) => [f.from.text, f.to])).toContainEqual(['location.available', 'qtyAvailable']);
    expect(picks!.explode.map((e) => [e.path.text, e.as])).toEqual([
      ['items', 'line'],
      ['line.allocations', 'pick'],
    ]);
    expect(picks!.filter).toEqual([{ path: { kind: 'header', name: 'eventType', text: '$header.eventType' }, op: 'in', values: ['OrderConfirmed'] }]);
    expect(erp).toMatchObject({ compact: false, fields: expect.any(Array) });
    expect(wh1).toMatchObject({ format: 'avro-as-is', fields: undefined });
    expect(wh1!.key.parts).toEqual([{ path: { kind: 'meta', field: 'key', text: '$key' } }]);
  });

  it('applies defaults and parses filters of every kind', () => {
    const [m] = parseMappingFile(
      levels(`    filter:\n      sku: { prefix: SKU- }\n      deleted: { not: true }\n      commitTs: { exists: true }\n      available: [1, 2]\n`),
      opts,
    );
    expect(m!.key.text).toBe('$key');
    expect(m!.filter.map((c) => c.op)).toEqual(['prefix', 'notIn', 'exists', 'in']);
    expect(m!.fields).toBeUndefined();
  });

  it('accepts key templates and an empty mapping list', () => {
    const [m] = parseMappingFile(levels(`    explode: { path: locations, as: location }\n    key: "{sku}@{location.locationId}"\n`), opts);
    expect(m!.key.parts).toHaveLength(3);
    expect(parseMappingFile('mappings: []\n', opts)).toEqual([]);
  });

  it.each([
    ['bad YAML', 'mappings: [\n', /^mappings\.yaml: not valid YAML/],
    ['an empty file', '', /the file is empty/],
    ['no mappings list', 'hello: 1\n', /^mappings\.yaml: mappings: is required: a list of mappings$/],
    ['an unknown top-level field', 'mappings: []\nhello: 1\n', /unknown field "hello" \(expected version, mappings\)/],
    ['an unknown source', 'mappings:\n  - name: a\n    source: stock.cdc\n    output: x\n', /mapping "a" \(#1\): source: is required: one of stock.deltas, stock.levels, orders.events/],
    ['a misspelt setting', levels('    fomat: json\n'), /mapping "wms" \(#1\): unknown field "fomat" \(expected name, description, source, output, format/],
    ['an unknown format', levels('    format: xml\n'), /mapping "wms" \(#1\): format: must be one of json, avro-as-is/],
    ['a field the source does not have', levels('    fields: { skuu: itemCode }\n'), /mapping "wms" \(#1\): fields\.skuu: stock\.levels has no field "skuu" \(fields: sku, available/],
    ['a nested field that does not exist', levels('    explode: { path: locations, as: location }\n    fields: { location.site: s }\n'), /fields\.location\.site: "location" has no field "site" \(fields: locationId, onHand/],
    ['a list used without explode', levels('    fields: { locations.available: a }\n'), /fields\.locations\.available: "locations" is a list: explode it/],
    ['a list index', levels('    fields: { locations.0.available: a }\n'), null],
    ['two fields with one output name', levels('    fields: { sku: id, version: id }\n'), /fields\.version: output name "id" is already used by sku/],
    ['avro-as-is from a JSON source', 'mappings:\n  - name: o\n    source: orders.events\n    output: x\n    format: avro-as-is\n', /mapping "o" \(#1\): format: avro-as-is needs an Avro source/],
    ['avro-as-is with renames', levels('    format: avro-as-is\n    fields: { sku: a }\n'), /fields: avro-as-is copies the Avro record unchanged/],
    ['a platform topic as output', 'mappings:\n  - name: loop\n    source: stock.deltas\n    output: stock.deltas\n', /output: stock.deltas is a platform topic/],
    ['an invalid topic name', 'mappings:\n  - name: a\n    source: stock.deltas\n    output: "wms levels"\n', /output: "wms levels": a topic name may only contain/],
    ['a template without a literal start', levels('    explode: { path: locations, as: location }\n').replace('output: wms.levels', 'output: "{location.locationId}"'), /output: a templated topic name must start with literal text/],
    ['an unclosed placeholder', levels('').replace('output: wms.levels', 'output: "wms.{sku"'), /output: "\{" without "\}"/],
    ['a placeholder of an unknown field', levels('').replace('output: wms.levels', 'output: "wms.{site}"'), /output: stock\.levels has no field "site"/],
    ['explode of a single value', levels('    explode: { path: sku, as: s }\n'), /explode\.path: "sku" is not a list/],
    ['explode shadowing a field', levels('    explode: { path: locations, as: sku }\n'), /explode\.as: "sku" is already a field/],
    ['a bad filter condition', levels('    filter: { sku: { like: "SKU%" } }\n'), /filter\.sku: must be a value, a list of values/],
    ['an unknown $ field', levels('    key: $partitionKey\n'), /key: "\$partitionKey" is not known/],
    ['duplicate names', `${levels('')}  - name: wms\n    source: stock.deltas\n    output: b\n`, /mapping "wms" \(#2\): name: "wms" is also the name of mapping #1/],
    ['a bad name', 'mappings:\n  - name: WMS Levels\n    source: stock.deltas\n    output: b\n', /mapping "WMS Levels" \(#1\): name: must be 1-63 characters/],
    ['a missing name', 'mappings:\n  - source: stock.deltas\n    output: b\n', /mapping #1: name: is required/],
    ['zero partitions', levels('    partitions: 0\n'), /partitions: must be at least 1/],
  ])('refuses %s with one line naming the mapping and field', (_what, yaml, pattern) => {
    if (pattern === null) {
      expect(() => parseMappingFile(yaml, opts)).not.toThrow();
      return;
    }
    const err = errorOf(yaml);
    expect(err.message).toMatch(pattern);
    expect(err.message).not.toContain('\n');
  });

  it('reports which mapping is wrong by name and position', () => {
    const err = errorOf(`${levels('')}  - name: second\n    source: orders.events\n    output: o\n    fields: { items.sku: x }\n`);
    expect(err.mapping).toBe('second');
    expect(err.field).toBe('fields.items.sku');
    expect(err.message).toMatch(/^mappings\.yaml: mapping "second" \(#2\): fields\.items\.sku: "items" is a list/);
  });
});
