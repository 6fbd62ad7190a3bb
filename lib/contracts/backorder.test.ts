import { describe, expect, it } from 'vitest';
import { backorderAllowance, policyFromCode, POLICY_CODE } from './backorder.ts';

describe('backorderAllowance', () => {
  it('none sells nothing beyond on hand, whatever is incoming', () => {
    expect(backorderAllowance({ policy: 'none', limit: null, incoming: 50, backordered: 0 })).toBe(0);
  });

  it('backorder sells up to its limit, with or without incoming, less what is already promised', () => {
    expect(backorderAllowance({ policy: 'backorder', limit: 5, incoming: 0, backordered: 0 })).toBe(5);
    expect(backorderAllowance({ policy: 'backorder', limit: 5, incoming: 100, backordered: 3 })).toBe(2);
    expect(backorderAllowance({ policy: 'backorder', limit: 5, incoming: 0, backordered: 7 })).toBe(0);
  });

  it('preorder sells against incoming only, capped by an optional limit', () => {
    expect(backorderAllowance({ policy: 'preorder', limit: null, incoming: 4, backordered: 1 })).toBe(3);
    expect(backorderAllowance({ policy: 'preorder', limit: 2, incoming: 4, backordered: 1 })).toBe(1);
    expect(backorderAllowance({ policy: 'preorder', limit: 10, incoming: 0, backordered: 0 })).toBe(0);
    // Receiving lowers incoming before it converts: never a negative allowance.
    expect(backorderAllowance({ policy: 'preorder', limit: null, incoming: 1, backordered: 3 })).toBe(0);
  });

  it('policy codes round-trip; an unknown code is none', () => {
    for (const [name, code] of Object.entries(POLICY_CODE)) expect(policyFromCode(code)).toBe(name);
    expect(policyFromCode(9)).toBe('none');
  });
});

describe('a SKU summary carries its incoming figures', () => {
  it('sums live rows, takes the earliest ETA and the allowance; null for a SKU that uses none of it', async () => {
    const { summarize } = await import('./stock-view.ts');
    const row = { onHand: 2, reserved: 0, safetyStock: 0, version: 1, deleted: false, commitTs: 1 };
    expect(summarize('A', { L1: row }).incoming).toBeNull();
    const s = summarize('A', {
      L1: { ...row, incoming: 4, backordered: 1, nextEta: 2000, policy: POLICY_CODE.preorder, limit: -1 },
      L2: { ...row, version: 2, incoming: 3, backordered: 0, nextEta: 1000, policy: POLICY_CODE.preorder, limit: -1 },
      L3: { ...row, version: 3, deleted: true, incoming: 50 },
    });
    expect(s.incoming).toEqual({ incoming: 7, nextEta: 1000, backordered: 1, backorderable: 6, policy: 'preorder' });
    expect(s.available).toBe(4);
  });
});
