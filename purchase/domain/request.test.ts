import { describe, expect, it } from 'vitest';
import { customerIdProblem, requestHash, validatePurchase, validIdempotencyKey } from './request.ts';

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
    [{ customerId: 'a\u0000b', items: [{ sku: 'A', qty: 1 }] }, 'customerId'],
    [{ customerId: 'c', items: [{ sku: 'A\u001fB', qty: 1 }] }, 'items[0].sku'],
    [[1, 2], 'body'],
    [null, 'body'],
  ])('names the offending field of %j', (body, field) => {
    const r = validatePurchase(body);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.field).toBe(field);
  });
});

describe('customerIdProblem', () => {
  it('refuses empty, over-long and control-character ids', () => {
    expect(customerIdProblem('alice')).toBeUndefined();
    expect(customerIdProblem('émile@example.com')).toBeUndefined();
    expect(customerIdProblem('')).toMatch(/1 to 128/);
    expect(customerIdProblem('x'.repeat(129))).toMatch(/1 to 128/);
    expect(customerIdProblem('a\u0000b')).toMatch(/control/);
    expect(customerIdProblem('a\nb')).toMatch(/control/);
    expect(customerIdProblem('a\u007fb')).toMatch(/control/);
  });

  it('the customer id is optional in the body (it comes from the credential)', () => {
    expect(validatePurchase({ items: [{ sku: 'A', qty: 1 }] })).toEqual({ ok: true, value: { items: [{ sku: 'A', qty: 1 }] } });
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
