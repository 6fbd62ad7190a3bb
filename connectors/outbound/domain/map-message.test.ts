import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import { TOPICS } from '../../../lib/topics.ts';
import type { StockDelta, StockLevel } from '../../../schemas/generated/avro-types.ts';
import { mapMessage, MAPPED_HEADERS, type SourceMessage } from './map-message.ts';
import { avroShape, ORDER_EVENT_SHAPE, parseMappingFile, type Mapping } from './mapping-spec.ts';

const avsc = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'schemas', 'avro', `${name}.avsc`), 'utf8'));
const shapes = { 'stock.deltas': avroShape(avsc('StockDelta')), 'stock.levels': avroShape(avsc('StockLevel')), 'orders.events': ORDER_EVENT_SHAPE };
const reserved = Object.values(TOPICS);

function mapping(yaml: string): Mapping {
  const [m] = parseMappingFile(`mappings:\n  - name: m\n${yaml.replace(/^/gm, '    ')}\n`, { file: 't.yaml', shapes, reservedTopics: reserved });
  return m!;
}

const level: StockLevel = {
  sku: 'SKU-1',
  channels: null,
  incoming: null,
  available: 12,
  onHand: 20,
  reserved: 3,
  safetyStock: 5,
  version: 41,
  deleted: false,
  commitTs: 1_700_000_000_000,
  locations: [
    { locationId: 'WH-1', onHand: 15, reserved: 3, safetyStock: 5, available: 7, version: 41 },
    { locationId: 'WH-2', onHand: 5, reserved: 0, safetyStock: 0, available: 5, version: 38 },
  ],
};

const delta: StockDelta = {
  sku: 'SKU-1',
  channels: null,
  available: 12,
  previousAvailable: 11,
  onHand: 20,
  reserved: 3,
  safetyStock: 5,
  version: 41,
  deleted: false,
  commitTs: 1_700_000_000_000,
  locationId: 'WH-1',
  location: { locationId: 'WH-1', onHand: 15, reserved: 3, safetyStock: 5, available: 7, version: 41 },
};

const order = {
  type: 'OrderConfirmed',
  orderId: 'o-1',
  customerId: 'c-1',
  status: 'confirmed',
  expiresAt: '2026-01-01T00:15:00.000Z',
  occurredAt: '2026-01-01T00:01:00.000Z',
  items: [
    { sku: 'SKU-1', qty: 3, allocations: [{ locationId: 'WH-1', qty: 2 }, { locationId: 'WH-2', qty: 1 }] },
    { sku: 'SKU-2', qty: 1, allocations: [{ locationId: 'WH-1', qty: 1 }] },
  ],
};

function message(topic: string, value: unknown, extra: Partial<SourceMessage> = {}): SourceMessage {
  const key = (value as { sku?: string; orderId?: string }).sku ?? (value as { orderId?: string }).orderId ?? null;
  return { topic, partition: 2, offset: '17', timestamp: '1700000000123', key, headers: {}, value, raw: Buffer.from([0, 0, 0, 0, 7, 1, 2]), ...extra };
}

describe('mapMessage', () => {
  it('targets a sales channel: its figure from the channels map, and only SKUs that channel has (docs/channels.md)', () => {
    const m = mapping(`source: stock.levels
output: marketplace.availability
key: sku
filter: { channels.mkt: { exists: true } }
fields: { sku: itemCode, channels.mkt: qty, version: version }`);
    const out = mapMessage(m, message('stock.levels', { ...level, channels: { mkt: 4, web: 12 } }), reserved);
    expect(out.problems).toEqual([]);
    expect(out.records.map((r) => [r.topic, r.key, JSON.parse(r.value as string)])).toEqual([['marketplace.availability', 'SKU-1', { itemCode: 'SKU-1', qty: 4, version: 41 }]]);
    expect(mapMessage(m, message('stock.levels', level), reserved).records).toEqual([]);
  });

  it('one topic per location from stock.levels, with renamed fields, key and de-duplication headers', () => {
    const m = mapping(`source: stock.levels
explode: { path: locations, as: location }
output: wms.levels.{location.locationId}
key: sku
fields: { sku: itemCode, location.locationId: site, location.available: qty, version: version }`);
    const out = mapMessage(m, message('stock.levels', level), reserved);
    expect(out.problems).toEqual([]);
    expect(out.records.map((r) => [r.topic, r.key, JSON.parse(r.value as string)])).toEqual([
      ['wms.levels.WH-1', 'SKU-1', { itemCode: 'SKU-1', site: 'WH-1', qty: 7, version: 41 }],
      ['wms.levels.WH-2', 'SKU-1', { itemCode: 'SKU-1', site: 'WH-2', qty: 5, version: 41 }],
    ]);
    expect(out.records[1]!.headers).toEqual({
      [MAPPED_HEADERS.dedupId]: 'm:SKU-1@41#1',
      [MAPPED_HEADERS.mapping]: 'm',
      [MAPPED_HEADERS.source]: 'stock.levels/2/17',
      [MAPPED_HEADERS.version]: '41',
    });
  });

  it('is deterministic: the same message maps to byte-identical records (re-runs are harmless)', () => {
    const m = mapping(`source: stock.levels\nexplode: { path: locations, as: location }\noutput: wms.levels`);
    const a = mapMessage(m, message('stock.levels', level));
    const b = mapMessage(m, message('stock.levels', structuredClone(level)));
    expect(b).toEqual(a);
    // Without `fields` the record is kept whole, the exploded list replaced by its element.
    expect(JSON.parse(a.records[0]!.value as string)).toEqual({ ...level, locations: undefined, location: level.locations[0] });
    expect(a.records[0]!.value).not.toContain('"locations"');
  });

  it('gives the deltas of one transaction (one per location, same SKU version) distinct ids', () => {
    const m = mapping('source: stock.deltas\noutput: erp.deltas');
    const delta = (locationId: string | null) => ({ sku: 'SKU-1', available: 5, previousAvailable: 3, onHand: 5, reserved: 0, safetyStock: 0, version: 41, deleted: false, commitTs: 1, locationId, location: null, channels: null });
    const ids = ['WH-1', 'WH-2', null].map((l) => mapMessage(m, message('stock.deltas', delta(l))).records[0]!.headers[MAPPED_HEADERS.dedupId]);
    expect(ids).toEqual(['m:SKU-1@41/WH-1', 'm:SKU-1@41/WH-2', 'm:SKU-1@41']);
  });

  it('a deleted state without locations maps to nothing, and its id differs from the live state at the same version', () => {
    const m = mapping(`source: stock.levels\nexplode: { path: locations, as: location }\noutput: wms.levels.{location.locationId}`);
    expect(mapMessage(m, message('stock.levels', { ...level, deleted: true, locations: [] }))).toEqual({ records: [], problems: [] });
    const whole = mapping('source: stock.levels\noutput: erp.levels');
    const live = mapMessage(whole, message('stock.levels', level)).records[0]!;
    const gone = mapMessage(whole, message('stock.levels', { ...level, deleted: true, locations: [] })).records[0]!;
    expect(live.headers[MAPPED_HEADERS.dedupId]).toBe('m:SKU-1@41');
    expect(gone.headers[MAPPED_HEADERS.dedupId]).toBe('m:SKU-1@41-deleted');
  });

  it('filters by location and copies Avro bytes unchanged with avro-as-is', () => {
    const m = mapping(`source: stock.deltas\noutput: erp.wh1\nformat: avro-as-is\nfilter: { locationId: WH-1 }`);
    const raw = Buffer.from([0, 0, 0, 0, 9, 42]);
    const hit = mapMessage(m, message('stock.deltas', delta, { raw }));
    expect(hit.records).toHaveLength(1);
    expect(hit.records[0]).toMatchObject({ topic: 'erp.wh1', key: 'SKU-1', value: raw });
    expect(mapMessage(m, message('stock.deltas', { ...delta, locationId: 'WH-2' })).records).toEqual([]);
    expect(mapMessage(m, message('stock.deltas', { ...delta, locationId: null })).records).toEqual([]);
  });

  it('filter operators: list, not, prefix, exists; missing fields count as null', () => {
    const run = (filter: string, value: unknown = delta) =>
      mapMessage(mapping(`source: stock.deltas\noutput: x\nfilter: ${filter}`), message('stock.deltas', value)).records.length;
    expect(run('{ locationId: [WH-2, WH-1] }')).toBe(1);
    expect(run('{ locationId: { not: [WH-2, WH-1] } }')).toBe(0);
    expect(run('{ sku: { prefix: SKU- } }')).toBe(1);
    expect(run('{ sku: { prefix: ACME- } }')).toBe(0);
    expect(run('{ previousAvailable: { exists: true } }')).toBe(1);
    expect(run('{ previousAvailable: { exists: false } }', { ...delta, previousAvailable: null })).toBe(1);
    expect(run('{ location.available: 7, deleted: false }')).toBe(1);
    expect(run('{ location.available: 7, deleted: true }')).toBe(0);
    expect(run('{ locationId: null }', { ...delta, locationId: null })).toBe(1);
  });

  it('order events: filter on the event type header, explode lines and allocations, event id for de-duplication', () => {
    const m = mapping(`source: orders.events
filter: { $header.eventType: OrderConfirmed }
explode:
  - { path: items, as: line }
  - { path: line.allocations, as: pick }
output: wms.picks.{pick.locationId}
key: orderId
fields: { $header.id: eventId, orderId: orderNo, line.sku: itemCode, pick.qty: pickQty, $partition: p }`);
    const headers = { id: 'evt-9', eventType: 'OrderConfirmed', createdAt: '2026-01-01T00:01:00.000001Z' };
    const out = mapMessage(m, message('orders.events', order, { headers, raw: null }));
    expect(out.problems).toEqual([]);
    expect(out.records.map((r) => [r.topic, r.key, JSON.parse(r.value as string)])).toEqual([
      ['wms.picks.WH-1', 'o-1', { eventId: 'evt-9', orderNo: 'o-1', itemCode: 'SKU-1', pickQty: 2, p: 2 }],
      ['wms.picks.WH-2', 'o-1', { eventId: 'evt-9', orderNo: 'o-1', itemCode: 'SKU-1', pickQty: 1, p: 2 }],
      ['wms.picks.WH-1', 'o-1', { eventId: 'evt-9', orderNo: 'o-1', itemCode: 'SKU-2', pickQty: 1, p: 2 }],
    ]);
    expect(out.records.map((r) => r.headers[MAPPED_HEADERS.dedupId])).toEqual(['m:evt-9#0.0', 'm:evt-9#0.1', 'm:evt-9#1.0']);
    expect(out.records[0]!.headers).toMatchObject({ [MAPPED_HEADERS.eventId]: 'evt-9', [MAPPED_HEADERS.eventType]: 'OrderConfirmed' });
    expect(out.records[0]!.headers[MAPPED_HEADERS.version]).toBeUndefined();
    const placed = mapMessage(m, message('orders.events', { ...order, type: 'OrderPlaced' }, { headers: { ...headers, eventType: 'OrderPlaced' } }));
    expect(placed).toEqual({ records: [], problems: [] });
  });

  it('a key template combines fields; a missing field is null in the value', () => {
    const m = mapping(`source: stock.deltas\noutput: x\nkey: "{sku}@{locationId}"\nfields: { sku: s, location.available: a }`);
    const out = mapMessage(m, message('stock.deltas', { ...delta, location: null }));
    expect(out.records[0]).toMatchObject({ key: 'SKU-1@WH-1', value: '{"s":"SKU-1","a":null}' });
  });

  it('reports what cannot be mapped, per element, and still maps the rest', () => {
    const m = mapping(`source: stock.levels\nexplode: { path: locations, as: location }\noutput: wms.levels.{location.locationId}`);
    const bad = { ...level, locations: [level.locations[0]!, { ...level.locations[1]!, locationId: 'WH 2' }] };
    const out = mapMessage(m, message('stock.levels', bad));
    expect(out.records.map((r) => r.topic)).toEqual(['wms.levels.WH-1']);
    expect(out.problems).toEqual(['output topic "wms.levels.WH 2" may only contain A-Z, a-z, 0-9, . _ - (element 1)']);

    const perDelta = mapping('source: stock.deltas\noutput: wms.d.{locationId}');
    expect(mapMessage(perDelta, message('stock.deltas', { ...delta, locationId: null })).problems).toEqual(['output topic wms.d.{locationId}: locationId is missing']);
    expect(mapMessage(perDelta, message('stock.deltas', delta, { key: null })).records[0]).toBeUndefined();
    expect(mapMessage(perDelta, message('stock.deltas', delta, { key: null })).problems).toEqual(['key $key: $key is missing']);
    expect(mapMessage(perDelta, message('stock.deltas', 'not a record')).problems).toEqual(['value is not a record (got "not a record")']);
    const shaped = mapMessage(mapping('source: stock.levels\nexplode: { path: locations, as: location }\noutput: x'), message('stock.levels', { ...level, locations: 5 }));
    expect(shaped.problems).toEqual(['explode: locations is not a list (got 5)']);
  });

  it('refuses to route into a platform topic or back into its source', () => {
    const m = mapping('source: stock.deltas\noutput: stock.{locationId}');
    expect(mapMessage(m, message('stock.deltas', { ...delta, locationId: 'levels' }), reserved).problems).toEqual([
      'output topic "stock.levels" is a platform topic; refusing to write to it',
    ]);
    expect(mapMessage(m, message('stock.X', { ...delta, locationId: 'X' }), reserved).problems).toHaveLength(1);
  });
});
