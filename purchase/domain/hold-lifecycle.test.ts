import { describe, expect, it } from 'vitest';
import { MAX_EXTEND_S, planChange, planExtend, validateChange, validateExtend } from './hold-lifecycle.ts';

const MIN = 60_000;

describe('planExtend', () => {
  const base = { nowMs: 10 * MIN, createdAtMs: 0, expiresAtMs: 15 * MIN, maxLifetimeMs: 60 * MIN };

  it('moves the expiry to now + seconds when that is within the maximum lifetime', () => {
    expect(planExtend({ ...base, seconds: 20 * 60 })).toEqual({ kind: 'extend', expiresAtMs: 30 * MIN, clamped: false });
  });

  it('clamps a request past the maximum lifetime to creation + maximum', () => {
    expect(planExtend({ ...base, seconds: 3 * 3600 })).toEqual({ kind: 'extend', expiresAtMs: 60 * MIN, clamped: true });
  });

  it('refuses when the hold already expires at the maximum', () => {
    expect(planExtend({ ...base, expiresAtMs: 60 * MIN, seconds: 3600 })).toEqual({ kind: 'at_limit', maxExpiresAtMs: 60 * MIN });
  });

  it('never shortens a hold: a target before the current expiry changes nothing', () => {
    expect(planExtend({ ...base, seconds: 60 })).toEqual({ kind: 'unchanged' });
    expect(planExtend({ ...base, seconds: 5 * 60 })).toEqual({ kind: 'unchanged' }); // exactly the current expiry
  });

  it('bounds every extend by creation + maximum, whatever the inputs', () => {
    for (let i = 0; i < 500; i++) {
      const createdAtMs = (i * 7919) % 100_000;
      const maxLifetimeMs = 1000 * (1 + (i % 5000));
      const expiresAtMs = createdAtMs + ((i * 31) % maxLifetimeMs);
      const nowMs = createdAtMs + ((i * 17) % (maxLifetimeMs + 1));
      const p = planExtend({ nowMs, createdAtMs, expiresAtMs, maxLifetimeMs, seconds: 1 + (i % MAX_EXTEND_S) });
      if (p.kind === 'extend') {
        expect(p.expiresAtMs).toBeLessThanOrEqual(createdAtMs + maxLifetimeMs);
        expect(p.expiresAtMs).toBeGreaterThan(expiresAtMs);
      }
    }
  });
});

describe('planChange', () => {
  const lines = [
    { sku: 'A', qty: 2 },
    { sku: 'B', qty: 5 },
  ];

  it('splits a change into increases and decreases, leaving unchanged lines out', () => {
    expect(planChange(lines, [{ sku: 'A', qty: 4 }, { sku: 'B', qty: 5 }])).toEqual({
      ok: true,
      lines: [{ sku: 'A', from: 2, to: 4 }],
      increases: [{ sku: 'A', qty: 2 }],
      decreases: [],
    });
    expect(planChange(lines, [{ sku: 'B', qty: 1 }, { sku: 'A', qty: 3 }])).toEqual({
      ok: true,
      lines: [
        { sku: 'B', from: 5, to: 1 },
        { sku: 'A', from: 2, to: 3 },
      ],
      increases: [{ sku: 'A', qty: 1 }],
      decreases: [{ sku: 'B', qty: 4 }],
    });
  });

  it('asks nothing when every line is already at its target (a retry of a change that went through)', () => {
    expect(planChange(lines, [{ sku: 'A', qty: 2 }])).toEqual({ ok: true, lines: [], increases: [], decreases: [] });
  });

  it('removes a line with qty 0 while another line keeps units', () => {
    expect(planChange(lines, [{ sku: 'A', qty: 0 }])).toMatchObject({ ok: true, decreases: [{ sku: 'A', qty: 2 }] });
  });

  it('treats qty 0 of a SKU the hold no longer has as already done (the retry of a removal)', () => {
    expect(planChange([{ sku: 'A', qty: 1 }], [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 0 }])).toEqual({ ok: true, lines: [], increases: [], decreases: [] });
  });

  it('refuses a SKU the hold has no line for, and taking every line to 0', () => {
    expect(planChange(lines, [{ sku: 'A', qty: 1 }, { sku: 'C', qty: 1 }])).toMatchObject({ ok: false, field: 'items[1].sku' });
    expect(planChange(lines, [{ sku: 'A', qty: 0 }, { sku: 'B', qty: 0 }])).toMatchObject({ ok: false, field: 'items' });
  });
});

describe('hold lifecycle bodies', () => {
  it('accepts whole seconds from 1 to MAX_EXTEND_S and nothing else', () => {
    expect(validateExtend({ seconds: 300 })).toEqual({ ok: true, value: { seconds: 300 } });
    for (const bad of [{}, { seconds: 0 }, { seconds: -5 }, { seconds: 1.5 }, { seconds: '60' }, { seconds: MAX_EXTEND_S + 1 }, { seconds: 60, orderId: 'x' }, null, [], 'x']) {
      const v = validateExtend(bad);
      expect(v.ok, JSON.stringify(bad)).toBe(false);
    }
    expect(validateExtend({ seconds: 60, customerId: 'eve' })).toMatchObject({ ok: false, field: 'customerId' });
  });

  it('accepts target quantities 0..1000 of distinct SKUs and names the offending field otherwise', () => {
    expect(validateChange({ items: [{ sku: 'A', qty: 0 }] })).toEqual({ ok: true, value: { items: [{ sku: 'A', qty: 0 }] } });
    expect(validateChange({ items: [] })).toMatchObject({ ok: false, field: 'items' });
    expect(validateChange({ items: [{ sku: 'A', qty: -1 }] })).toMatchObject({ ok: false, field: 'items[0].qty' });
    expect(validateChange({ items: [{ sku: 'A', qty: 1001 }] })).toMatchObject({ ok: false, field: 'items[0].qty' });
    expect(validateChange({ items: [{ sku: 'A', qty: 1 }, { sku: 'A', qty: 2 }] })).toMatchObject({ ok: false, field: 'items' });
    expect(validateChange({ items: [{ sku: 'A\u0000', qty: 1 }] })).toMatchObject({ ok: false, field: 'items[0].sku' });
    expect(validateChange({ items: [{ sku: 'A', qty: 1 }], customerId: 'eve' })).toMatchObject({ ok: false, field: 'customerId' });
  });
});
