import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expandKits, kitCatalog, kitFigure, kitState, kitVersion, type ComponentState, type Kit } from './kits.ts';

const state = (sku: string, available: number, version: number, channels: Record<string, number> | null = null, extra: Partial<ComponentState> = {}): ComponentState => ({
  sku,
  available,
  version,
  deleted: false,
  commitTs: version * 10,
  channels,
  ...extra,
});
const states = (...s: ComponentState[]) => new Map(s.map((x) => [x.sku, x]));
const KIT: Kit = { sku: 'K', base: 1000, components: [{ sku: 'B', qty: 2 }, { sku: 'A', qty: 1 }] };

describe('kit availability (docs/kits.md, "Availability")', () => {
  it('is the minimum over components of floor(available / qty)', () => {
    const s = kitState(kitCatalog(1, [KIT]).kits.get('K')!, states(state('A', 7, 5), state('B', 9, 8)))!;
    expect(s.available).toBe(4); // B: floor(9 / 2) = 4 < A: 7
    expect(s).toMatchObject({ sku: 'K', onHand: 4, reserved: 0, safetyStock: 0, deleted: false, locations: [], commitTs: 80, version: 1000 + 5 + 8 });
    expect(kitState(KIT, states(state('A', 1, 5), state('B', 9, 8)))!.available).toBe(1);
  });

  it('counts a component without a state, or deleted, as 0; no component known: no state', () => {
    expect(kitState(KIT, states(state('A', 7, 5)))!.available).toBe(0);
    expect(kitState(KIT, states(state('A', 7, 5), state('B', 9, 8, null, { deleted: true })))!.available).toBe(0);
    expect(kitState(KIT, new Map())).toBeUndefined();
  });

  it('per sales channel: the same rule over each channel every component has', () => {
    const s = kitState(KIT, states(state('A', 7, 5, { web: 3, mkt: 7, only_a: 1 }), state('B', 9, 8, { web: 9, mkt: 1 })))!;
    expect(s.channels).toEqual({ mkt: 0, web: 3 });
    expect(kitState(KIT, states(state('A', 7, 5), state('B', 9, 8)))!.channels).toBeNull();
  });

  it('never exceeds what any component can give, and selling a kit never needs more than a component has (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ qty: fc.integer({ min: 1, max: 20 }), available: fc.integer({ min: 0, max: 500 }) }), { minLength: 1, maxLength: 6 }),
        (parts) => {
          const kit: Kit = { sku: 'K', base: 0, components: parts.map((p, i) => ({ sku: `C${i}`, qty: p.qty })) };
          const n = kitFigure(kit, (sku) => parts[Number(sku.slice(1))]!.available);
          for (const p of parts) expect(n * p.qty).toBeLessThanOrEqual(p.available);
          // ... and it is the largest such number: one more kit would need more than some component has.
          expect(parts.some((p) => (n + 1) * p.qty > p.available)).toBe(true);
        },
      ),
    );
  });
});

describe('kit version (docs/kits.md, "Versions")', () => {
  it('grows with any component change, whichever component and whatever the order versions arrive in (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 3, maxLength: 3 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 1000 }), (vs, which, bump) => {
        const kit: Kit = { sku: 'K', base: 7, components: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 1 }, { sku: 'C', qty: 3 }] };
        const before = states(state('A', 1, vs[0]!), state('B', 1, vs[1]!), state('C', 1, vs[2]!));
        const sku = 'ABC'[which]!;
        const after = new Map(before).set(sku, state(sku, 1, before.get(sku)!.version + bump));
        expect(kitVersion(kit, after)).toBeGreaterThan(kitVersion(kit, before));
      }),
    );
  });
});

describe('expandKits (docs/kits.md, "Buying a kit")', () => {
  const catalog = kitCatalog(3, [KIT, { sku: 'EMPTY', base: 0, components: [] }]);

  it('replaces kit lines by their components, merged with single lines of the same SKU', () => {
    const e = expandKits([{ sku: 'A', qty: 1 }, { sku: 'K', qty: 3 }, { sku: 'X', qty: 2 }], catalog, 1000);
    expect(e).toEqual({
      ok: true,
      items: [{ sku: 'A', qty: 4 }, { sku: 'B', qty: 6 }, { sku: 'X', qty: 2 }],
      kits: [{ sku: 'K', qty: 3, components: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 2 }] }],
    });
  });

  it('leaves purchases without kits as they are; a kit without components is not a kit', () => {
    expect(expandKits([{ sku: 'A', qty: 2 }], catalog, 1000)).toEqual({ ok: true, items: [{ sku: 'A', qty: 2 }], kits: [] });
    expect(expandKits([{ sku: 'EMPTY', qty: 2 }], catalog, 1000)).toEqual({ ok: true, items: [{ sku: 'EMPTY', qty: 2 }], kits: [] });
    expect(catalog.byComponent.get('B')).toEqual(['K']);
  });

  it('refuses a purchase whose kits take a component past the per-line bound, naming the line', () => {
    expect(expandKits([{ sku: 'B', qty: 999 }, { sku: 'K', qty: 1 }], catalog, 1000)).toEqual({ ok: false, field: 'items[1].qty', message: 'kit K brings the purchase to 1001 units of B, more than 1000' });
  });

  it('asks the gate for exactly the units the lines need (property)', () => {
    fc.assert(
      // Distinct SKUs per body, as the purchase schema requires.
      fc.property(fc.uniqueArray(fc.record({ sku: fc.constantFrom('A', 'B', 'K', 'X'), qty: fc.integer({ min: 1, max: 50 }) }), { minLength: 1, maxLength: 4, selector: (i) => i.sku }), (items) => {
        const e = expandKits(items, catalog, 1000);
        if (!e.ok) return;
        const want = new Map<string, number>();
        for (const i of items) {
          const parts = i.sku === 'K' ? [['A', i.qty], ['B', 2 * i.qty]] : [[i.sku, i.qty]];
          for (const [s, q] of parts as Array<[string, number]>) want.set(s, (want.get(s) ?? 0) + q);
        }
        expect(new Map(e.items.map((i) => [i.sku, i.qty]))).toEqual(want);
        expect(new Set(e.items.map((i) => i.sku)).size).toBe(e.items.length);
      }),
    );
  });
});
