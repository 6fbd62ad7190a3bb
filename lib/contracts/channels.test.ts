import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { channelAvailability, channelTerms, encodeChannelTerms, fenceUnits, type ChannelConfig, type ChannelTerms } from './channels.ts';

const terms = (...c: Array<[string, string[], ChannelTerms[number]['fence']]>): ChannelTerms => c.map(([id, locations, fence]) => ({ id, locations, fence }));

describe('channelAvailability (docs/channels.md, "The availability rule")', () => {
  it('gives a channel its locations minus the other channels\' fences on the locations they share', () => {
    const avail = new Map([['A', 20], ['B', 15], ['C', 7]]);
    expect(channelAvailability(avail, terms(['web', ['A', 'B'], { units: 10 }], ['mkt', ['B'], null]))).toEqual({ web: 35, mkt: 5 });
    // A fence larger than the pool keeps the whole pool; a percentage rounds down.
    expect(channelAvailability(avail, terms(['web', ['B'], { units: 100 }], ['mkt', ['B'], null]))).toEqual({ web: 15, mkt: 0 });
    expect(channelAvailability(avail, terms(['web', ['B'], { bp: 3333 }], ['mkt', ['B'], null]))).toEqual({ web: 15, mkt: 11 });
    // Disjoint channels do not affect each other; no locations, nothing.
    expect(channelAvailability(avail, terms(['a', ['A'], { units: 5 }], ['c', ['C'], { units: 5 }], ['none', [], null]))).toEqual({ a: 20, c: 7, none: 0 });
  });

  // The fence holds whatever the other channel's allocation when that channel's locations are all
  // shared with the fenced one (a marketplace served by some of the web shop's warehouses). When
  // the other channel also has locations of its own, the fence holds only if its sourcing uses
  // those first: docs/channels.md, "Limits of the rule".
  it('never exceeds the channel\'s pool, and a fenced channel keeps its fence from every channel whose locations it shares', () => {
    const locs = ['A', 'B', 'C', 'D'];
    const arb = fc.record({
      avail: fc.array(fc.nat(50), { minLength: 4, maxLength: 4 }),
      channels: fc.array(fc.record({ locs: fc.subarray(locs), fence: fc.option(fc.oneof(fc.record({ units: fc.nat(60) }), fc.record({ bp: fc.nat(10_000) }))) }), { minLength: 1, maxLength: 5 }),
    });
    fc.assert(
      fc.property(arb, ({ avail, channels }) => {
        const a = new Map(locs.map((l, i) => [l, avail[i]!]));
        const t: ChannelTerms = channels.map((c, i) => ({ id: `c${i}`, locations: c.locs, fence: c.fence }));
        const out = channelAvailability(a, t);
        t.forEach((c, i) => {
          const pool = c.locations.reduce((s, l) => s + a.get(l)!, 0);
          expect(out[c.id]).toBeLessThanOrEqual(pool);
          expect(out[c.id]).toBeGreaterThanOrEqual(0);
          // What any other channel may take from the locations it shares with c leaves c its fence there.
          const fence = fenceUnits(c.fence, pool);
          t.forEach((o, j) => {
            if (i === j || !o.locations.every((l) => c.locations.includes(l))) return;
            const shared = c.locations.filter((l) => o.locations.includes(l)).reduce((s, l) => s + a.get(l)!, 0);
            expect(Math.min(out[o.id]!, shared)).toBeLessThanOrEqual(Math.max(0, shared - Math.min(fence, shared)));
          });
        });
      }),
    );
  });

  it('resolves a per-SKU fence over the channel default, and encodes the apply script\'s argument', () => {
    const config: ChannelConfig = {
      version: 7,
      channels: new Map([['web', { id: 'web', name: 'Web', sourcing: 'priority', pickupLocation: null, locations: ['A', 'B'], fence: { units: 3 } }]]),
      skuFences: new Map([['HOT', new Map([['web', { bp: 2500 }]])]]),
    };
    expect(channelTerms(config, 'HOT')).toEqual([{ id: 'web', locations: ['A', 'B'], fence: { bp: 2500 } }]);
    expect(channelTerms(config, 'COLD')[0]!.fence).toEqual({ units: 3 });
    expect(JSON.parse(encodeChannelTerms(7, channelTerms(config, 'HOT')))).toEqual({ v: 7, c: [['web', 1, 2500, ['A', 'B']]] });
  });
});
