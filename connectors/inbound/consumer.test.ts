import { describe, expect, it } from 'vitest';
import { dlqReason } from '../../lib/contracts/dlq.ts';
import { PoisonMessageError } from '../../lib/kafka-stage.ts';
import type { StockAdjustment } from '../../schemas/generated/avro-types.ts';
import { fromPgError } from '../../lib/driver-errors.ts';
import { isDataError } from '../../lib/kafka-stage.ts';
import { checkAdjustment, kafkaVia, keyMismatch } from './consumer.ts';

const a: StockAdjustment = { adjustmentId: 'x', sku: 'SKU-1', locationId: 'WH-1', kind: 'RECEIPT', quantity: 1, toLocationId: null, occurredAt: 0, sourceSystem: 's', reference: null, expectedOnHand: null, expectedVersion: null, countedAt: null };

function thrown(f: () => unknown): PoisonMessageError {
  try {
    f();
  } catch (err) {
    if (err instanceof PoisonMessageError) return err;
    throw err;
  }
  throw new Error('expected a PoisonMessageError');
}

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

  it('passes a valid adjustment keyed by its SKU, and names why it refuses the others', () => {
    expect(checkAdjustment(a, Buffer.from('SKU-1'))).toEqual(a);
    const invalid = thrown(() => checkAdjustment({ ...a, quantity: 0 }, Buffer.from('SKU-1')));
    expect([invalid.reason, invalid.adjustmentId, invalid.message.split(':')[0]]).toEqual(['invalid', 'x', 'quantity']);
    const mismatch = thrown(() => checkAdjustment(a, Buffer.from('SKU-2')));
    expect([mismatch.reason, mismatch.adjustmentId, mismatch.tags]).toEqual(['key_mismatch', 'x', { kind: 'RECEIPT' }]);
  });

  it('dead-letters only what Postgres refuses as data; connection trouble, races and the unknown are retried', () => {
    const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code });
    const asStore = (err: unknown) => fromPgError(err, { contention: ['23505'] }); // as adapters/pg-adjustments.ts
    expect(isDataError(asStore(pgError('22021')))).toBe(true); // invalid byte sequence
    expect(isDataError(asStore(pgError('23514')))).toBe(true); // check violation
    expect(isDataError(asStore(pgError('23505')))).toBe(false); // unique violation: the store retries it
    expect(isDataError(asStore(pgError('40P01')))).toBe(false);
    expect(isDataError(asStore(pgError('42P01')))).toBe(false); // undefined table: not the message's fault
    expect(isDataError(asStore(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })))).toBe(false);
    expect(isDataError(asStore(new Error('Connection terminated unexpectedly')))).toBe(false);
  });
});
