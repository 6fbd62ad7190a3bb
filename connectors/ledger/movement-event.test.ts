import { describe, expect, it } from 'vitest';
import { SchemaError } from '../../lib/errors.ts';
import { movementFromCdc } from './movement-event.ts';

const after = {
  movement_id: 7,
  sku: 'S-1',
  location_id: 'WH-1',
  kind: 'adjustment',
  reason: 'COUNT',
  source_system: 'wms',
  reference: 'cnt-1',
  actor: 'http:wms',
  details: '{"adjustmentIds":["a1"]}',
  on_hand_delta: -2,
  reserved_delta: 0,
  safety_stock_delta: 0,
  incoming_delta: 0,
  backordered_delta: 0,
  on_hand: 88,
  reserved: 3,
  safety_stock: 0,
  incoming: 0,
  backordered: 0,
  version: 1234,
  deleted: false,
  txid: 99,
  recorded_at: '2026-12-01T02:32:21.865113Z',
  effective_at: '2026-12-01T02:30:00Z',
};
const event = (op: string, a: unknown = after) => Buffer.from(JSON.stringify({ before: null, after: a, op, source: {}, ts_ms: 1 }));

describe('movementFromCdc', () => {
  it('maps a created movement (and a snapshot read) to the Avro record', () => {
    for (const op of ['c', 'r']) {
      expect(movementFromCdc(event(op))).toEqual({
        movementId: 7,
        sku: 'S-1',
        locationId: 'WH-1',
        kind: 'adjustment',
        reason: 'COUNT',
        sourceSystem: 'wms',
        reference: 'cnt-1',
        actor: 'http:wms',
        details: '{"adjustmentIds":["a1"]}',
        onHandDelta: -2,
        reservedDelta: 0,
        safetyStockDelta: 0,
        incomingDelta: 0,
        backorderedDelta: 0,
        onHand: 88,
        reserved: 3,
        safetyStock: 0,
        incoming: 0,
        backordered: 0,
        version: 1234,
        deleted: false,
        recordedAt: Date.parse('2026-12-01T02:32:21.865Z'),
        effectiveAt: Date.parse('2026-12-01T02:30:00Z'),
      });
    }
  });

  it('has nothing to publish for pruning deletes, updates and tombstones', () => {
    expect(movementFromCdc(event('d', null))).toBeNull();
    expect(movementFromCdc(event('u'))).toBeNull();
    expect(movementFromCdc(null)).toBeNull();
  });

  it('refuses what is not a movement with a SchemaError naming the field', () => {
    expect(() => movementFromCdc(Buffer.from('{not json'))).toThrow(SchemaError);
    expect(() => movementFromCdc(Buffer.from('{"op":"x"}'))).toThrow(SchemaError);
    expect(() => movementFromCdc(event('c', { ...after, on_hand_delta: 'many' }))).toThrow(/on_hand_delta/);
    expect(() => movementFromCdc(event('c', { ...after, recorded_at: 'soon' }))).toThrow(/recorded_at/);
    expect(() => movementFromCdc(event('c', { ...after, version: 2 ** 60 }))).toThrow(SchemaError);
  });
});
