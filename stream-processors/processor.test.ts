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

describe('selectEmitted with coalesced groups', () => {
  const r = (version: number, carried: boolean, group: 'applied' | 'duplicate' | 'stale', own = group, published = -1) => ({
    result: { outcome: own, published, change: change(version), summary: { sku: 'A', version: 7 } as never, carried, group: { outcome: group, locationIds: ['L'] } },
  });

  it('emits a group once, from its last change, on the group\'s outcome', () => {
    // A transaction whose first change was already applied (e.g. by a rebuild) and last was not.
    const batch = [r(5, true, 'applied', 'duplicate'), r(6, true, 'applied'), r(7, false, 'applied', 'duplicate')];
    const { emitted, marks } = selectEmitted(batch);
    expect(emitted).toEqual([batch[2]]);
    expect([...marks]).toEqual([['A', 7]]);
  });

  it('re-emits a replayed group only when its version is above the published mark', () => {
    expect(selectEmitted([r(6, true, 'duplicate'), r(7, false, 'duplicate', 'duplicate', 5)]).emitted).toHaveLength(1);
    expect(selectEmitted([r(6, true, 'duplicate'), r(7, false, 'duplicate', 'duplicate', 7)]).emitted).toHaveLength(0);
    expect(selectEmitted([r(6, true, 'stale'), r(7, false, 'stale')]).emitted).toHaveLength(0);
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
