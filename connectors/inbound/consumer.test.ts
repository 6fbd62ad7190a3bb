import { describe, expect, it } from 'vitest';
import type { StockAdjustment } from '../../schemas/generated/avro-types.ts';
import { dlqReason, isDataError, kafkaVia, keyMismatch } from './consumer.ts';

const a: StockAdjustment = { adjustmentId: 'x', sku: 'SKU-1', locationId: 'WH-1', kind: 'RECEIPT', quantity: 1, toLocationId: null, occurredAt: 0, sourceSystem: 's', reference: null };

describe('inbound consumer helpers', () => {
  it('requires the message key to be the SKU (per-SKU order rests on it)', () => {
    expect(keyMismatch(Buffer.from('SKU-1'), a)).toBeNull();
    expect(keyMismatch(Buffer.from('SKU-2'), a)).toBe('the message key ("SKU-2") must be the SKU ("SKU-1")');
    expect(keyMismatch(null, a)).toBe('the message key (none) must be the SKU ("SKU-1")');
  });

  it('formats reasons as <code>: <message>, the code being what metrics and tests match on', () => {
    expect(dlqReason('negative_on_hand', 'PICK of 5 at WH-1 would leave on hand at -1')).toBe('negative_on_hand: PICK of 5 at WH-1 would leave on hand at -1');
    expect(dlqReason('invalid', 'quantity: must be at least 1').split(':')[0]).toBe('invalid');
  });

  it('records where an adjustment came from', () => {
    expect(kafkaVia('stock.adjustments', 3, '1234')).toBe('kafka:stock.adjustments/3@1234');
  });

  it('dead-letters only what Postgres refuses as data; connection trouble and races are retried', () => {
    expect(isDataError({ code: '22021' })).toBe(true); // invalid byte sequence
    expect(isDataError({ code: '23514' })).toBe(true); // check violation
    expect(isDataError({ code: '23505' })).toBe(false); // unique violation: the store retries it
    expect(isDataError({ code: '40P01' })).toBe(false);
    expect(isDataError({ code: 'ECONNREFUSED' })).toBe(false);
    expect(isDataError(new Error('Connection terminated'))).toBe(false);
  });
});
