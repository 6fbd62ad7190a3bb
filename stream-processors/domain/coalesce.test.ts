import { describe, expect, it } from 'vitest';
import { coalesceGroups, groupLocations } from './coalesce.ts';

const c = (sku: string, txId: number | null, locationId = 'L1') => ({ sku, txId, locationId });

describe('coalesceGroups', () => {
  it('merges one SKU\'s changes of one transaction, keeps SKUs and transactions apart', () => {
    const batch = [c('A', 1, 'L1'), c('B', 1), c('A', 1, 'L2'), c('A', 2), c('A', 2, 'L2'), c('B', 3)];
    expect(coalesceGroups(batch)).toEqual([[0, 2], [1], [3, 4], [5]]);
  });

  it('never merges changes without a transaction id', () => {
    expect(coalesceGroups([c('A', null), c('A', null)])).toEqual([[0], [1]]);
  });

  it('never lets groups of one SKU interleave: a change joins only the SKU\'s latest group', () => {
    // txId 1 again after txId 2 (not something pgoutput emits) starts a new group rather than
    // jumping back over the txId 2 change.
    expect(coalesceGroups([c('A', 1), c('A', 2), c('A', 1)])).toEqual([[0], [1], [2]]);
  });

  it('keeps every index exactly once, in CDC order within a group', () => {
    const batch = Array.from({ length: 300 }, (_, i) => c(`S${i % 7}`, Math.floor(i / 50)));
    const groups = coalesceGroups(batch);
    expect(groups.flat().sort((a, b) => a - b)).toEqual(batch.map((_, i) => i));
    for (const g of groups) expect([...g].sort((a, b) => a - b)).toEqual(g);
  });
});

describe('groupLocations', () => {
  it('names each location a group changed once, in order of first change', () => {
    expect(groupLocations([c('A', 1, 'L1'), c('A', 1, 'L1')])).toEqual(['L1']);
    expect(groupLocations([c('A', 1, 'L2'), c('A', 1, 'L1'), c('A', 1, 'L2')])).toEqual(['L2', 'L1']);
  });
});
