import { describe, expect, it } from 'vitest';
import type { StockAdjustment } from '../../../schemas/generated/avro-types.ts';
import { adjustmentHash, locationsOf, validateAdjustment } from './adjustment.ts';

const receipt: StockAdjustment = {
  adjustmentId: 'adj-1',
  sku: 'SKU-1',
  locationId: 'WH-1',
  kind: 'RECEIPT',
  quantity: 5,
  toLocationId: null,
  occurredAt: 1_795_236_135_779,
  sourceSystem: 'wms-1',
  reference: 'GRN-42',
  expectedOnHand: null,
  expectedVersion: null,
  countedAt: null,
};

describe('validateAdjustment', () => {
  it('accepts a well-formed adjustment and fills the optional fields with null', () => {
    expect(validateAdjustment(receipt, { strict: true })).toEqual({ ok: true, value: receipt });
    const { toLocationId: _t, reference: _r, ...bare } = receipt;
    expect(validateAdjustment(bare, { strict: true })).toEqual({ ok: true, value: { ...receipt, reference: null } });
  });

  it('accepts compare-and-set expectations, alone or together, and leaves them out of the hash', () => {
    for (const more of [{ expectedOnHand: 0 }, { expectedVersion: 0 }, { expectedOnHand: 7, expectedVersion: 123_456_789_012 }]) {
      const v = validateAdjustment({ ...receipt, ...more }, { strict: true });
      expect(v).toEqual({ ok: true, value: { ...receipt, ...more } });
      if (v.ok) expect(adjustmentHash(v.value)).toBe(adjustmentHash(receipt));
    }
  });

  it('accepts a COUNT of 0 and a TRANSFER to another location', () => {
    expect(validateAdjustment({ ...receipt, kind: 'COUNT', quantity: 0 }, { strict: true }).ok).toBe(true);
    expect(validateAdjustment({ ...receipt, kind: 'TRANSFER', toLocationId: 'WH-2' }, { strict: true }).ok).toBe(true);
  });

  it.each([
    [{ ...receipt, extra: 1 }, 'extra'],
    [{ ...receipt, adjustmentId: '' }, 'adjustmentId'],
    [{ ...receipt, adjustmentId: 'a\nb' }, 'adjustmentId'],
    [{ ...receipt, sku: 'x'.repeat(129) }, 'sku'],
    [{ ...receipt, locationId: 'x'.repeat(65) }, 'locationId'],
    [{ ...receipt, kind: 'LOSS' }, 'kind'],
    [{ ...receipt, quantity: 0 }, 'quantity'],
    [{ ...receipt, kind: 'PICK', quantity: -3 }, 'quantity'],
    [{ ...receipt, quantity: 1.5 }, 'quantity'],
    [{ ...receipt, quantity: '5' }, 'quantity'],
    [{ ...receipt, quantity: 2 ** 31 }, 'quantity'],
    [{ ...receipt, kind: 'COUNT', quantity: -1 }, 'quantity'],
    [{ ...receipt, kind: 'TRANSFER' }, 'toLocationId'],
    [{ ...receipt, kind: 'TRANSFER', toLocationId: 'WH-1' }, 'toLocationId'],
    [{ ...receipt, toLocationId: 'WH-2' }, 'toLocationId'],
    [{ ...receipt, occurredAt: -1 }, 'occurredAt'],
    [{ ...receipt, occurredAt: '2026-11-21' }, 'occurredAt'],
    [{ ...receipt, sourceSystem: undefined }, 'sourceSystem'],
    [{ ...receipt, reference: 'r'.repeat(257) }, 'reference'],
    [{ ...receipt, reference: 'a\u0000b' }, 'reference'],
    [{ ...receipt, expectedOnHand: -1 }, 'expectedOnHand'],
    [{ ...receipt, expectedOnHand: 1.5 }, 'expectedOnHand'],
    [{ ...receipt, expectedOnHand: '5' }, 'expectedOnHand'],
    [{ ...receipt, expectedOnHand: 2 ** 31 }, 'expectedOnHand'],
    [{ ...receipt, expectedVersion: -1 }, 'expectedVersion'],
    [{ ...receipt, expectedVersion: 0.5 }, 'expectedVersion'],
    [{ ...receipt, expectedVersion: '12' }, 'expectedVersion'],
    [{ ...receipt, expectedVersion: 2 ** 53 }, 'expectedVersion'],
    [[receipt], 'body'],
    [null, 'body'],
  ])('names the offending field of %j', (input, field) => {
    const r = validateAdjustment(input, { strict: true });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.field).toBe(field);
  });

  it('ignores fields it does not know in decoded records (a newer reader schema), never in HTTP bodies', () => {
    expect(validateAdjustment({ ...receipt, lotNumber: 'L-7' }, { strict: false })).toEqual({ ok: true, value: receipt });
    expect(validateAdjustment({ ...receipt, lotNumber: 'L-7' }, { strict: true }).ok).toBe(false);
  });
});

describe('adjustmentHash', () => {
  it('is stable for the same payload and changes with any field', () => {
    const h = adjustmentHash(receipt);
    expect(adjustmentHash({ ...receipt })).toBe(h);
    for (const change of [{ quantity: 6 }, { sku: 'SKU-2' }, { locationId: 'WH-2' }, { kind: 'RETURN' as const }, { occurredAt: 1 }, { sourceSystem: 'erp' }, { reference: null }]) {
      expect(adjustmentHash({ ...receipt, ...change }), JSON.stringify(change)).not.toBe(h);
    }
  });
});

describe('locationsOf', () => {
  it('is the location, or source and target of a transfer', () => {
    expect(locationsOf(receipt)).toEqual(['WH-1']);
    expect(locationsOf({ ...receipt, kind: 'TRANSFER', toLocationId: 'WH-0' })).toEqual(['WH-1', 'WH-0']);
  });
});
