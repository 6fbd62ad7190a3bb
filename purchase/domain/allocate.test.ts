import { describe, expect, it } from 'vitest';
import { allocate, sellable } from './allocate.ts';

const loc = (locationId: string, onHand: number, reserved = 0, safetyStock = 0) => ({ locationId, onHand, reserved, safetyStock });

describe('allocate', () => {
  it('takes from the location with the most sellable units first', () => {
    expect(allocate([loc('A', 5), loc('B', 9), loc('C', 2)], 4)).toEqual([{ locationId: 'B', qty: 4 }]);
  });

  it('splits across locations only when one is not enough', () => {
    expect(allocate([loc('A', 5), loc('B', 9), loc('C', 2)], 12)).toEqual([
      { locationId: 'B', qty: 9 },
      { locationId: 'A', qty: 3 },
    ]);
  });

  it('counts reserved and safety stock, never a negative figure', () => {
    expect(sellable(loc('A', 3, 2, 5))).toBe(0);
    expect(allocate([loc('A', 10, 4, 2), loc('B', 3, 0, 5)], 4)).toEqual([{ locationId: 'A', qty: 4 }]);
    expect(allocate([loc('A', 10, 4, 2), loc('B', 3, 0, 5)], 5)).toBeNull();
  });

  it('breaks ties by location id, so the same input always gives the same plan', () => {
    expect(allocate([loc('B', 4), loc('A', 4)], 2)).toEqual([{ locationId: 'A', qty: 2 }]);
  });

  it('returns null when the locations together cannot cover the line', () => {
    expect(allocate([], 1)).toBeNull();
    expect(allocate([loc('A', 1), loc('B', 1)], 3)).toBeNull();
  });
});
