import { describe, expect, it } from 'vitest';
import { parseEta, validatePolicy, validateReceipt, validateReceive } from './receipt.ts';

const line = { line: 1, sku: 'SKU-1', locationId: 'WH-1', quantity: 10, eta: '2026-12-24T09:00:00+01:00' };

describe('validateReceipt', () => {
  it('accepts a receipt and normalises the ETA to UTC', () => {
    const v = validateReceipt('PO-1', { reference: 'ASN 77', lines: [line, { ...line, line: 2, cancelled: true }] });
    expect(v).toEqual({
      ok: true,
      value: { receiptId: 'PO-1', reference: 'ASN 77', lines: [{ ...line, eta: '2026-12-24T08:00:00.000Z' }, { ...line, line: 2, eta: '2026-12-24T08:00:00.000Z', cancelled: true }] },
    });
  });

  it('names the field of every refusal', () => {
    const cases: Array<[string, unknown, string]> = [
      ['bad id!', { lines: [line] }, 'receiptId'],
      ['PO-1', [], ''],
      ['PO-1', { lines: [] }, 'lines'],
      ['PO-1', { lines: [line], customer: 'x' }, 'customer'],
      ['PO-1', { lines: [{ ...line, quantity: 0 }] }, 'lines[0].quantity'],
      ['PO-1', { lines: [{ ...line, quantity: 1.5 }] }, 'lines[0].quantity'],
      ['PO-1', { lines: [{ ...line, eta: '2026-12-24' }] }, 'lines[0].eta'],
      ['PO-1', { lines: [{ ...line, eta: '1970-01-01T00:00:00Z' }] }, 'lines[0].eta'],
      ['PO-1', { lines: [{ ...line, sku: '' }] }, 'lines[0].sku'],
      ['PO-1', { lines: [{ ...line, locationId: 'a\u0000b' }] }, 'lines[0].locationId'],
      ['PO-1', { lines: [line, line] }, 'lines[1].line'],
      ['PO-1', { lines: [{ ...line, cancelled: 'yes' }] }, 'lines[0].cancelled'],
      ['PO-1', { lines: [line], reference: 7 }, 'reference'],
    ];
    for (const [id, body, field] of cases) {
      const v = validateReceipt(id, body);
      expect(v.ok, JSON.stringify(body)).toBe(false);
      if (!v.ok) expect(v.field).toBe(field);
    }
  });
});

describe('validateReceive', () => {
  it('accepts positive quantities of distinct lines, refuses the rest', () => {
    expect(validateReceive('PO-1', { lines: [{ line: 1, quantity: 3 }] })).toEqual({ ok: true, value: { receiptId: 'PO-1', lines: [{ line: 1, quantity: 3 }] } });
    expect(validateReceive('PO-1', { lines: [{ line: 1, quantity: -3 }] })).toMatchObject({ ok: false, field: 'lines[0].quantity' });
    expect(validateReceive('PO-1', { lines: [{ line: 1, quantity: 1 }, { line: 1, quantity: 1 }] })).toMatchObject({ ok: false, field: 'lines[1].line' });
    expect(validateReceive('PO-1', { lines: [{ line: 1, quantity: 1, sku: 'X' }] })).toMatchObject({ ok: false, field: 'lines[0].sku' });
  });
});

describe('validatePolicy', () => {
  it('backorder needs a limit, none takes none, preorder may cap', () => {
    expect(validatePolicy('S', { policy: 'backorder', limit: 5 })).toEqual({ ok: true, value: { sku: 'S', policy: 'backorder', limit: 5 } });
    expect(validatePolicy('S', { policy: 'preorder' })).toEqual({ ok: true, value: { sku: 'S', policy: 'preorder', limit: null } });
    expect(validatePolicy('S', { policy: 'backorder' })).toMatchObject({ ok: false, field: 'limit' });
    expect(validatePolicy('S', { policy: 'none', limit: 3 })).toMatchObject({ ok: false, field: 'limit' });
    expect(validatePolicy('S', { policy: 'sometimes' })).toMatchObject({ ok: false, field: 'policy' });
    expect(validatePolicy('S', { policy: 'preorder', limit: -1 })).toMatchObject({ ok: false, field: 'limit' });
  });
});

describe('parseEta', () => {
  it('needs a zone and a plausible year', () => {
    expect(parseEta('2026-12-24T09:00Z')).toBe('2026-12-24T09:00:00.000Z');
    expect(parseEta('2026-12-24T09:00:00')).toBeUndefined();
    expect(parseEta('2026-02-31T09:00:00Z')).toBe('2026-03-03T09:00:00.000Z');
    expect(parseEta(20261224)).toBeUndefined();
  });
});
