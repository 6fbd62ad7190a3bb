import { describe, expect, it } from 'vitest';
import { requestHash, validatePurchase, validIdempotencyKey } from './request.ts';

describe('validatePurchase', () => {
  it('accepts a well-formed purchase', () => {
    expect(validatePurchase({ customerId: 'c', items: [{ sku: 'A', qty: 2 }] })).toEqual({ ok: true, value: { customerId: 'c', items: [{ sku: 'A', qty: 2 }] } });
  });

  it.each([
    [{ customerId: 'c', items: [{ sku: 'A', qty: 1 }], extra: 1 }, 'extra'],
    [{ customerId: 'c', items: [{ sku: 'A', qty: 1, note: 'x' }] }, 'items[0].note'],
    [{ customerId: 'c', items: [{ sku: 'A', qty: 0 }] }, 'items[0].qty'],
    [{ customerId: 'c', items: [{ sku: 'A', qty: 1001 }] }, 'items[0].qty'],
    [{ customerId: 'c', items: [{ sku: '', qty: 1 }] }, 'items[0].sku'],
    [{ customerId: 'c', items: [] }, 'items'],
    [{ customerId: '', items: [{ sku: 'A', qty: 1 }] }, 'customerId'],
    [[1, 2], 'body'],
    [null, 'body'],
  ])('names the offending field of %j', (body, field) => {
    const r = validatePurchase(body);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.field).toBe(field);
  });
});

describe('idempotency', () => {
  it('keys are printable ASCII without spaces, 1 to 128 characters', () => {
    expect(validIdempotencyKey('abc-123_XYZ:1')).toBe(true);
    expect(validIdempotencyKey('')).toBe(false);
    expect(validIdempotencyKey('a b')).toBe(false);
    expect(validIdempotencyKey('é')).toBe(false);
    expect(validIdempotencyKey('x'.repeat(129))).toBe(false);
    expect(validIdempotencyKey(undefined)).toBe(false);
  });

  it('the request hash ignores item order and changes with any quantity, SKU or customer', () => {
    const h = requestHash({ customerId: 'c', items: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 2 }] });
    expect(requestHash({ customerId: 'c', items: [{ sku: 'B', qty: 2 }, { sku: 'A', qty: 1 }] })).toBe(h);
    expect(requestHash({ customerId: 'c', items: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 3 }] })).not.toBe(h);
    expect(requestHash({ customerId: 'd', items: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 2 }] })).not.toBe(h);
  });
});
