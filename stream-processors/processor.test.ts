import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from '../lib/errors.ts';
import type { RowChange } from './domain/fold.ts';
import { decodeCdcMessage, selectEmitted, shouldEmit } from './processor.ts';

const change = (version: number, sku = 'A'): RowChange => ({ sku, locationId: 'L', deleted: false, onHand: 1, reserved: 0, safetyStock: 0, version, commitTs: 0 });

describe('shouldEmit', () => {
  it('emits applied changes, and duplicates whose effects were not yet published', () => {
    expect(shouldEmit({ outcome: 'applied', published: 99, change: change(5) }, -1)).toBe(true);
    expect(shouldEmit({ outcome: 'duplicate', published: -1, change: change(5) }, -1)).toBe(true);
    expect(shouldEmit({ outcome: 'duplicate', published: 5, change: change(5) }, -1)).toBe(false);
    expect(shouldEmit({ outcome: 'duplicate', published: 3, change: change(5) }, 5)).toBe(false);
    expect(shouldEmit({ outcome: 'stale', published: -1, change: change(5) }, -1)).toBe(false);
  });
});

describe('selectEmitted', () => {
  const applied = (outcome: 'applied' | 'duplicate' | 'stale', version: number, sku = 'A', published = -1) => ({
    result: { outcome, published, change: change(version, sku), summary: { sku, version } as never },
  });

  it('emits a re-delivered duplicate once per batch, and marks the highest version emitted per SKU', () => {
    const batch = [applied('duplicate', 5), applied('duplicate', 5), applied('applied', 6), applied('stale', 4), applied('applied', 2, 'B')];
    const { emitted, marks } = selectEmitted(batch);
    expect(emitted).toEqual([batch[0], batch[2], batch[4]]);
    expect([...marks]).toEqual([
      ['A', 6],
      ['B', 2],
    ]);
  });
});

describe('decodeCdcMessage', () => {
  const row = { sku: 'A', location_id: 'L', on_hand: 3, reserved: 1, safety_stock: 0, version: 7, updated_at: '2026-11-21T00:00:00Z' };
  const event = (op: string, value: object) => Buffer.from(JSON.stringify({ before: null, after: value, source: { ts_ms: 1000, table: 'stock_levels' }, op, ts_ms: 1001 }));

  it('turns a change event into the row change to apply', () => {
    expect(decodeCdcMessage(event('u', row), Buffer.from('{"sku":"A"}'))).toMatchObject({ sku: 'A', locationId: 'L', onHand: 3, reserved: 1, version: 7, deleted: false });
  });

  it('has nothing to apply for a tombstone', () => {
    expect(decodeCdcMessage(null, Buffer.from('{"sku":"A"}'))).toBeNull();
  });

  it('throws a data error (dead-lettered, not retried) with the decoder reason for a poison event', () => {
    expect(() => decodeCdcMessage(Buffer.from('this is not a change event'), null)).toThrow(InvalidMessageError);
    expect(() => decodeCdcMessage(Buffer.from('this is not a change event'), null)).toThrow('value is not JSON');
  });
});
