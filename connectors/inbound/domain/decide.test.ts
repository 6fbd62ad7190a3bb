import { describe, expect, it } from 'vitest';
import type { AdjustmentKind, StockAdjustment } from '../../../schemas/generated/avro-types.ts';
import { adjustmentHash } from './adjustment.ts';
import { datedKey, decideBatch, rowKey, rowsToLock, type DecideState, type RowState } from './decide.ts';

let n = 0;
function adj(kind: AdjustmentKind, quantity: number, more: Partial<StockAdjustment> = {}): StockAdjustment {
  n++;
  return { adjustmentId: `a${n}`, sku: 'S', locationId: 'A', kind, quantity, toLocationId: null, occurredAt: n, sourceSystem: 'wms', reference: null, expectedOnHand: null, expectedVersion: null, countedAt: null, ...more };
}
const input = (...as: StockAdjustment[]) => as.map((adjustment) => ({ adjustment, hash: adjustmentHash(adjustment) }));

function state(rows: Record<string, Partial<RowState>>, extra: Partial<DecideState> = {}): DecideState {
  return {
    rows: new Map(Object.entries(rows).map(([loc, r]) => [rowKey('S', loc), { onHand: 0, reserved: 0, ...r }])),
    ledger: new Map(),
    products: new Set(['S']),
    locations: new Set(['A', 'B', 'C']),
    ...extra,
  };
}

describe('decideBatch: count versus delta', () => {
  it('applies deltas and counts in order, each against what the previous left', () => {
    const { decisions, writes } = decideBatch(
      input(adj('RECEIPT', 5), adj('PICK', 3), adj('COUNT', 20), adj('DAMAGE', 1), adj('RETURN', 2), adj('COUNT', 21)),
      state({ A: { onHand: 10 } }),
    );
    expect(decisions.map((d) => d.outcome)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied', 'applied']);
    expect(decisions.map((d) => (d.outcome === 'applied' ? d.changes[0]!.onHandAfter : null))).toEqual([15, 12, 20, 19, 21, 21]);
    expect(decisions.map((d) => (d.outcome === 'applied' ? d.changes[0]!.onHandBefore : null))).toEqual([10, 15, 12, 20, 19, 21]);
    expect(writes).toEqual([{ sku: 'S', locationId: 'A', onHandBefore: 10, onHandAfter: 21 }]);
  });

  it('a count that confirms the figure applies but writes nothing', () => {
    const { decisions, writes } = decideBatch(input(adj('COUNT', 10)), state({ A: { onHand: 10 } }));
    expect(decisions[0]).toMatchObject({ outcome: 'applied', changes: [{ locationId: 'A', onHandBefore: 10, onHandAfter: 10 }] });
    expect(writes).toEqual([]);
  });

  it('creates a missing row for a receipt or a count, refuses a pick from it', () => {
    const { decisions, writes } = decideBatch(input(adj('RECEIPT', 4, { locationId: 'B' }), adj('COUNT', 0, { locationId: 'C' }), adj('PICK', 1, { sku: 'S', locationId: 'A' })), state({}));
    expect(decisions.map((d) => d.outcome)).toEqual(['applied', 'applied', 'refused']);
    expect(decisions[2]).toMatchObject({ code: 'negative_on_hand' });
    expect(writes).toEqual([
      { sku: 'S', locationId: 'B', onHandBefore: null, onHandAfter: 4 },
      { sku: 'S', locationId: 'C', onHandBefore: null, onHandAfter: 0 },
    ]);
  });
});

describe('decideBatch: refusals change nothing', () => {
  it('never lets on hand go negative or below reserved when lowering it; raising is always allowed', () => {
    const s = state({ A: { onHand: 10, reserved: 6 } });
    const [neg, res, cnt, up, ok] = decideBatch(input(adj('PICK', 11), adj('DAMAGE', 5), adj('COUNT', 5), adj('RECEIPT', 1), adj('PICK', 4)), s).decisions;
    expect(neg).toMatchObject({ outcome: 'refused', code: 'negative_on_hand', details: { onHand: 10, requested: 11 } });
    expect(res).toMatchObject({ outcome: 'refused', code: 'below_reserved', details: { reserved: 6 } });
    expect(cnt).toMatchObject({ outcome: 'refused', code: 'below_reserved' });
    expect(up).toMatchObject({ outcome: 'applied' });
    expect(ok).toMatchObject({ outcome: 'applied', changes: [{ onHandBefore: 11, onHandAfter: 7 }] });
    // Already below reserved (someone wrote SQL): raising it is fine, a count that raises it too.
    const below = state({ A: { onHand: 2, reserved: 6 } });
    expect(decideBatch(input(adj('RECEIPT', 1), adj('COUNT', 3)), below).decisions.map((d) => d.outcome)).toEqual(['applied', 'applied']);
  });

  it('refuses what would overflow a Postgres int', () => {
    const [d] = decideBatch(input(adj('RECEIPT', 10)), state({ A: { onHand: 2_147_483_640 } })).decisions;
    expect(d).toMatchObject({ outcome: 'refused', code: 'on_hand_overflow' });
  });

  it('refuses unknown SKUs and locations, naming the field', () => {
    const s = state({ A: { onHand: 10 } });
    const [sku, loc, to] = decideBatch(input(adj('RECEIPT', 1, { sku: 'X' }), adj('RECEIPT', 1, { locationId: 'Z' }), adj('TRANSFER', 1, { toLocationId: 'Z' })), s).decisions;
    expect(sku).toMatchObject({ outcome: 'refused', code: 'unknown_sku', details: { sku: 'X', field: 'sku' } });
    expect(loc).toMatchObject({ outcome: 'refused', code: 'unknown_location', details: { locationId: 'Z', field: 'locationId' } });
    expect(to).toMatchObject({ outcome: 'refused', code: 'unknown_location', details: { locationId: 'Z', field: 'toLocationId' } });
  });

  it('a refused adjustment leaves the state for the next one untouched', () => {
    const { decisions, writes } = decideBatch(input(adj('PICK', 20), adj('PICK', 10)), state({ A: { onHand: 10 } }));
    expect(decisions.map((d) => d.outcome)).toEqual(['refused', 'applied']);
    expect(writes).toEqual([{ sku: 'S', locationId: 'A', onHandBefore: 10, onHandAfter: 0 }]);
  });
});

describe('decideBatch: transfers are all or nothing', () => {
  it('moves units from source to target, creating the target row', () => {
    const { decisions, writes } = decideBatch(input(adj('TRANSFER', 4, { toLocationId: 'B' })), state({ A: { onHand: 10 } }));
    expect(decisions[0]).toMatchObject({
      outcome: 'applied',
      changes: [
        { locationId: 'A', onHandBefore: 10, onHandAfter: 6 },
        { locationId: 'B', onHandBefore: 0, onHandAfter: 4 },
      ],
    });
    expect(writes).toEqual([
      { sku: 'S', locationId: 'A', onHandBefore: 10, onHandAfter: 6 },
      { sku: 'S', locationId: 'B', onHandBefore: null, onHandAfter: 4 },
    ]);
  });

  it('refused at the source or at the target: neither location changes', () => {
    const atSource = decideBatch(input(adj('TRANSFER', 11, { toLocationId: 'B' })), state({ A: { onHand: 10 }, B: { onHand: 1 } }));
    expect(atSource.decisions[0]).toMatchObject({ outcome: 'refused', code: 'negative_on_hand' });
    expect(atSource.writes).toEqual([]);
    const atTarget = decideBatch(input(adj('TRANSFER', 5, { toLocationId: 'B' })), state({ A: { onHand: 10 }, B: { onHand: 2_147_483_645 } }));
    expect(atTarget.decisions[0]).toMatchObject({ outcome: 'refused', code: 'on_hand_overflow' });
    expect(atTarget.writes).toEqual([]);
  });

  it('locks every touched row, transfer targets included, in one sorted order', () => {
    expect(rowsToLock(input(adj('TRANSFER', 1, { sku: 'T', locationId: 'B', toLocationId: 'A' }), adj('RECEIPT', 1, { sku: 'S', locationId: 'C' }), adj('PICK', 1, { sku: 'T', locationId: 'B' })))).toEqual([
      { sku: 'S', locationId: 'C' },
      { sku: 'T', locationId: 'A' },
      { sku: 'T', locationId: 'B' },
    ]);
  });
});

describe('decideBatch: exactly once', () => {
  it('an id in the ledger is a duplicate with the same payload, a conflict with another', () => {
    const first = adj('RECEIPT', 5);
    const ledger = new Map([[first.adjustmentId, { hash: adjustmentHash(first), result: { version: 7 } }]]);
    const { decisions, writes } = decideBatch(input(first, { ...first, quantity: 6 }), state({ A: { onHand: 10 } }, { ledger }));
    expect(decisions[0]).toEqual({ outcome: 'duplicate', adjustment: first, first: { result: { version: 7 } } });
    expect(decisions[1]).toMatchObject({ outcome: 'refused', code: 'adjustment_id_conflict', details: { adjustmentId: first.adjustmentId } });
    expect(writes).toEqual([]);
  });

  it('the same id twice in one batch applies once', () => {
    const a = adj('RECEIPT', 5);
    const { decisions, writes } = decideBatch(input(a, a, { ...a, quantity: 1 }), state({ A: { onHand: 10 } }));
    expect(decisions.map((d) => d.outcome)).toEqual(['applied', 'duplicate', 'refused']);
    expect(decisions[1]).toMatchObject({ first: { index: 0 } });
    expect(writes).toEqual([{ sku: 'S', locationId: 'A', onHandBefore: 10, onHandAfter: 15 }]);
  });

  it('a duplicate wins over catalog checks: an applied adjustment stays applied after its SKU left the catalog', () => {
    const a = adj('RECEIPT', 5);
    const ledger = new Map([[a.adjustmentId, { hash: adjustmentHash(a), result: {} }]]);
    expect(decideBatch(input(a), state({}, { ledger, products: new Set() })).decisions[0]!.outcome).toBe('duplicate');
  });

  it('a refused id may be sent again and applies once the cause is gone', () => {
    const a = adj('PICK', 5);
    expect(decideBatch(input(a), state({ A: { onHand: 1 } })).decisions[0]!.outcome).toBe('refused');
    expect(decideBatch(input(a), state({ A: { onHand: 9 } })).decisions[0]!.outcome).toBe('applied');
  });
});

describe('decideBatch: compare-and-set', () => {
  it('applies when the expected on hand and version hold, either or both', () => {
    const s = state({ A: { onHand: 10, version: 7 } });
    for (const more of [{ expectedOnHand: 10 }, { expectedVersion: 7 }, { expectedOnHand: 10, expectedVersion: 7 }]) {
      const { decisions, writes } = decideBatch(input(adj('PICK', 3, more)), s);
      expect(decisions[0]).toMatchObject({ outcome: 'applied', changes: [{ locationId: 'A', onHandBefore: 10, onHandAfter: 7 }] });
      expect(writes).toEqual([{ sku: 'S', locationId: 'A', onHandBefore: 10, onHandAfter: 7 }]);
    }
  });

  it('refuses a mismatch on each field with the current figures, and writes nothing', () => {
    const s = state({ A: { onHand: 10, reserved: 2, version: 7 } });
    const cases = [
      [{ expectedOnHand: 9 }, ['expectedOnHand']],
      [{ expectedVersion: 6 }, ['expectedVersion']],
      [{ expectedOnHand: 9, expectedVersion: 6 }, ['expectedOnHand', 'expectedVersion']],
      // One holds, the other does not: still refused.
      [{ expectedOnHand: 10, expectedVersion: 8 }, ['expectedVersion']],
      [{ expectedOnHand: 11, expectedVersion: 7 }, ['expectedOnHand']],
    ] as const;
    for (const [more, mismatched] of cases) {
      const { decisions, writes } = decideBatch(input(adj('RECEIPT', 1, { expectedOnHand: null, expectedVersion: null, ...more })), s);
      expect(decisions[0]).toMatchObject({
        outcome: 'refused',
        code: 'stock_changed',
        details: { sku: 'S', locationId: 'A', onHand: 10, reserved: 2, version: 7, mismatched: [...mismatched] },
      });
      expect(writes).toEqual([]);
    }
    const [d] = decideBatch(input(adj('RECEIPT', 1, { expectedOnHand: 9, expectedVersion: 6 })), s).decisions;
    expect(d).toMatchObject({ message: 'stock of S at A changed: expected on hand 9, is 10; expected version 6, is 7' });
  });

  it('is checked before the quantity rules: a stale premise is reported as such', () => {
    const [d] = decideBatch(input(adj('PICK', 50, { expectedOnHand: 60 })), state({ A: { onHand: 10, version: 7 } })).decisions;
    expect(d).toMatchObject({ outcome: 'refused', code: 'stock_changed' });
    // A matching expectation does not lift the other rules.
    const [e] = decideBatch(input(adj('PICK', 50, { expectedOnHand: 10 })), state({ A: { onHand: 10, version: 7 } })).decisions;
    expect(e).toMatchObject({ outcome: 'refused', code: 'negative_on_hand' });
  });

  it('a missing row is on hand 0 with no version', () => {
    expect(decideBatch(input(adj('RECEIPT', 4, { expectedOnHand: 0 })), state({})).decisions[0]).toMatchObject({ outcome: 'applied' });
    expect(decideBatch(input(adj('RECEIPT', 4, { expectedOnHand: 1 })), state({})).decisions[0]).toMatchObject({ code: 'stock_changed', details: { onHand: 0, version: null } });
    const [v] = decideBatch(input(adj('RECEIPT', 4, { expectedVersion: 0 })), state({})).decisions;
    expect(v).toMatchObject({ code: 'stock_changed', details: { version: null, mismatched: ['expectedVersion'] } });
    expect((v as { message: string }).message).toContain('the row has no version yet');
  });

  it('a transfer checks its source location only', () => {
    const s = state({ A: { onHand: 10, version: 7 }, B: { onHand: 3, version: 9 } });
    const move = (more: Partial<StockAdjustment>) => adj('TRANSFER', 4, { toLocationId: 'B', ...more });
    expect(decideBatch(input(move({ expectedOnHand: 10, expectedVersion: 7 })), s).decisions[0]).toMatchObject({
      outcome: 'applied',
      changes: [
        { locationId: 'A', onHandBefore: 10, onHandAfter: 6 },
        { locationId: 'B', onHandBefore: 3, onHandAfter: 7 },
      ],
    });
    // The target's figures are not what is expected.
    const { decisions, writes } = decideBatch(input(move({ expectedOnHand: 3, expectedVersion: 9 })), s);
    expect(decisions[0]).toMatchObject({ code: 'stock_changed', details: { locationId: 'A', onHand: 10, version: 7 } });
    expect(writes).toEqual([]);
  });

  it('in a batch, on hand is what the earlier adjustments left; a version they changed is gone', () => {
    const s = state({ A: { onHand: 10, version: 7 } });
    // Two writers who both read (10, v7): the first applies, the second is refused, as one by one.
    const { decisions, writes } = decideBatch(input(adj('PICK', 2, { expectedVersion: 7 }), adj('PICK', 3, { expectedVersion: 7 })), s);
    expect(decisions.map((d) => d.outcome)).toEqual(['applied', 'refused']);
    expect(decisions[1]).toMatchObject({
      code: 'stock_changed',
      message: 'stock of S at A changed: expected version 7, an earlier adjustment of the same batch changed the row',
      details: { onHand: 8, version: null },
    });
    expect(writes).toEqual([{ sku: 'S', locationId: 'A', onHandBefore: 10, onHandAfter: 8 }]);

    const byOnHand = decideBatch(input(adj('PICK', 2, { expectedOnHand: 10 }), adj('PICK', 3, { expectedOnHand: 10 }), adj('PICK', 3, { expectedOnHand: 8 })), s).decisions;
    expect(byOnHand.map((d) => d.outcome)).toEqual(['applied', 'refused', 'applied']);

    // A count that confirms the figure changes nothing, so the version still holds.
    const confirmed = decideBatch(input(adj('COUNT', 10), adj('PICK', 1, { expectedVersion: 7 })), s).decisions;
    expect(confirmed.map((d) => d.outcome)).toEqual(['applied', 'applied']);
  });

  it('a duplicate is reported whatever it expected; a refused one may be corrected and sent again', () => {
    const a = adj('RECEIPT', 5, { expectedVersion: 7 });
    const ledger = new Map([[a.adjustmentId, { hash: adjustmentHash(a), result: { version: 8 } }]]);
    // The expectations are not part of the hash: the redelivery is the same adjustment.
    expect(decideBatch(input({ ...a, expectedVersion: 1 }), state({ A: { onHand: 15, version: 8 } }, { ledger })).decisions[0]!.outcome).toBe('duplicate');
    const refused = decideBatch(input(a), state({ A: { onHand: 10, version: 9 } })).decisions[0]!;
    expect(refused).toMatchObject({ outcome: 'refused', code: 'stock_changed' });
    expect(decideBatch(input({ ...a, expectedVersion: 9 }), state({ A: { onHand: 10, version: 9 } })).decisions[0]!.outcome).toBe('applied');
  });
});

describe('decideBatch: dated counts (docs/ledger.md#dated-counts)', () => {
  const T = 1_800_000_000_000;
  const dated = (rows: Record<number, { movedSince: number; newerCountAt?: number | null }>, more: { horizon?: number | null; now?: number } = {}) => ({
    dated: {
      now: more.now ?? T + 60_000,
      horizon: more.horizon === undefined ? T - 86_400_000 : more.horizon,
      rows: new Map(Object.entries(rows).map(([at, r]) => [datedKey('S', 'A', Number(at)), { movedSince: r.movedSince, newerCountAt: r.newerCountAt ?? null }])),
    },
  });

  it('adds what moved after the count, in the ledger and earlier in the batch', () => {
    // 9 sold and 3 received after the count (ledger: -6), then a receipt of 2 earlier in this batch.
    const { decisions, writes } = decideBatch(input(adj('RECEIPT', 2), adj('COUNT', 50, { countedAt: T })), state({ A: { onHand: 40 } }, dated({ [T]: { movedSince: -6 } })));
    expect(decisions.map((d) => d.outcome)).toEqual(['applied', 'applied']);
    expect(writes).toEqual([{ sku: 'S', locationId: 'A', onHandBefore: 40, onHandAfter: 50 - 6 + 2 }]);
  });

  it('refuses a count before the horizon, after now, or older than a count applied since; nothing is written', () => {
    for (const [d, code] of [
      [dated({}, { horizon: T + 1 }), 'count_too_old'],
      [dated({}, { now: T - 61_000 }), 'count_in_future'],
      [dated({ [T]: { movedSince: 0, newerCountAt: T + 5 } }), 'count_superseded'],
    ] as const) {
      const { decisions, writes } = decideBatch(input(adj('COUNT', 5, { countedAt: T })), state({ A: { onHand: 9 } }, d));
      expect(decisions[0]).toMatchObject({ outcome: 'refused', code });
      expect(writes).toEqual([]);
    }
  });

  it('a newer dated count earlier in the batch supersedes an older one after it; an older one before it does not count as a move after the newer', () => {
    const both = decideBatch(
      input(adj('COUNT', 30, { countedAt: T + 10 }), adj('COUNT', 20, { countedAt: T })),
      state({ A: { onHand: 25 } }, dated({ [T + 10]: { movedSince: 0 }, [T]: { movedSince: 0 } })),
    );
    expect(both.decisions.map((d) => (d.outcome === 'refused' ? d.code : d.outcome))).toEqual(['applied', 'count_superseded']);
    const ordered = decideBatch(
      input(adj('COUNT', 20, { countedAt: T }), adj('COUNT', 30, { countedAt: T + 10 })),
      state({ A: { onHand: 25 } }, dated({ [T + 10]: { movedSince: 0 }, [T]: { movedSince: 0 } })),
    );
    expect(ordered.writes).toEqual([{ sku: 'S', locationId: 'A', onHandBefore: 25, onHandAfter: 30 }]);
  });
});
