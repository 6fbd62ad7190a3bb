import { describe, expect, it } from 'vitest';
import { SchemaError } from '../../lib/errors.ts';
import { movementFromRow } from '../../lib/contracts/movements.ts';
import { movementKeyFromCdc, toStockMovement } from './movement-event.ts';

const row = { sku: 'S-1', location_id: 'WH-1', on_hand: 5, reserved: 1, safety_stock: 0, version: 1234 };
const event = (op: string, before: unknown, after: unknown) => Buffer.from(JSON.stringify({ before, after, op, source: {}, ts_ms: 1 }));

describe('movementKeyFromCdc', () => {
  it('names the row after a create, update or snapshot read, and the removed row of a delete', () => {
    for (const op of ['c', 'u', 'r']) expect(movementKeyFromCdc(event(op, null, row))).toEqual({ sku: 'S-1', locationId: 'WH-1', version: 1234 });
    expect(movementKeyFromCdc(event('d', { ...row, version: 77 }, null))).toEqual({ sku: 'S-1', locationId: 'WH-1', version: 77 });
  });

  it('has nothing to publish for tombstones and truncates', () => {
    expect(movementKeyFromCdc(null)).toBeNull();
    expect(movementKeyFromCdc(event('t', null, null))).toBeNull();
  });

  it('refuses what is not a stock_levels event with a SchemaError naming the field', () => {
    expect(() => movementKeyFromCdc(Buffer.from('{not json'))).toThrow(SchemaError);
    expect(() => movementKeyFromCdc(Buffer.from('{"op":"x"}'))).toThrow(SchemaError);
    expect(() => movementKeyFromCdc(event('u', null, { ...row, version: 'v1' }))).toThrow(/after\.version/);
    expect(() => movementKeyFromCdc(event('d', null, null))).toThrow(/before/);
    expect(() => movementKeyFromCdc(event('c', null, { ...row, version: 2 ** 60 }))).toThrow(SchemaError);
  });
});

describe('toStockMovement', () => {
  it('maps a ledger row to the Avro record, details as JSON text', () => {
    const m = movementFromRow({
      movement_id: '7',
      sku: 'S-1',
      location_id: 'WH-1',
      kind: 'adjustment',
      reason: 'COUNT',
      source_system: 'wms',
      reference: 'cnt-1',
      actor: 'http:wms',
      details: { adjustmentIds: ['a1'] },
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
      version: '1234',
      deleted: false,
      recorded_at: new Date('2026-12-01T02:32:21.865Z'),
      effective_at: new Date('2026-12-01T02:30:00Z'),
    });
    expect(toStockMovement(m)).toEqual({
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
  });
});
