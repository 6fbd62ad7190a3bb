import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { channelAvailability, channelTerms, encodeChannelTerms, fenceUnits, pinsAgainst, type ChannelConfig, type ChannelTerms } from './channels.ts';

const terms = (...c: Array<[string, string[], ChannelTerms[number]['fence']]>): ChannelTerms => c.map(([id, locations, fence]) => ({ id, locations, fence }));

describe('channelAvailability (docs/channels.md, "The availability rule")', () => {
  it('gives a channel its locations minus what other channels\' fences pin there', () => {
    const avail = new Map([['A', 20], ['B', 15], ['C', 7]]);
    // web's fence sits on its first location: on B, mkt may sell B's units minus it ...
    expect(channelAvailability(avail, terms(['web', ['B', 'A'], { units: 10 }], ['mkt', ['B'], null]))).toEqual({ web: 35, mkt: 5 });
    // ... on A, which mkt cannot sell anyway, mkt keeps all of B.
    expect(channelAvailability(avail, terms(['web', ['A', 'B'], { units: 10 }], ['mkt', ['B'], null]))).toEqual({ web: 35, mkt: 15 });
    // A fence larger than the pool keeps the whole pool; a percentage rounds down.
    expect(channelAvailability(avail, terms(['web', ['B'], { units: 100 }], ['mkt', ['B'], null]))).toEqual({ web: 15, mkt: 0 });
    expect(channelAvailability(avail, terms(['web', ['B'], { bp: 3333 }], ['mkt', ['B'], null]))).toEqual({ web: 15, mkt: 11 });
    // A fence spills over to the next location when the first is short.
    expect(channelAvailability(avail, terms(['web', ['C', 'B'], { units: 10 }], ['mkt', ['B', 'C'], null]))).toEqual({ web: 22, mkt: 12 });
    // Disjoint channels do not affect each other; no locations, nothing.
    expect(channelAvailability(avail, terms(['a', ['A'], { units: 5 }], ['c', ['C'], { units: 5 }], ['none', [], null]))).toEqual({ a: 20, c: 7, none: 0 });
  });

  it('never exceeds the pool, and a fence holds whatever another channel takes within its pins', () => {
    const locs = ['A', 'B', 'C', 'D'];
    const arb = fc.record({
      avail: fc.array(fc.nat(50), { minLength: 4, maxLength: 4 }),
      channels: fc.array(fc.record({ locs: fc.shuffledSubarray(locs), fence: fc.option(fc.oneof(fc.record({ units: fc.nat(60) }), fc.record({ bp: fc.nat(10_000) }))) }), { minLength: 1, maxLength: 5 }),
    });
    fc.assert(
      fc.property(arb, ({ avail, channels }) => {
        const a = new Map(locs.map((l, i) => [l, avail[i]!]));
        const t: ChannelTerms = channels.map((c, i) => ({ id: `c${i}`, locations: c.locs, fence: c.fence }));
        const out = channelAvailability(a, t);
        t.forEach((c) => {
          const pool = c.locations.reduce((s, l) => s + a.get(l)!, 0);
          expect(out[c.id]).toBeLessThanOrEqual(pool);
          expect(out[c.id]).toBeGreaterThanOrEqual(0);
          const fence = fenceUnits(c.fence, pool);
          for (const o of t) {
            if (o === c) continue;
            // The most `o` can take at each location: what the others' pins leave it (the write-back's cap).
            const kept = pinsAgainst(a, t, o.id);
            const left = c.locations.reduce((s, l) => s + a.get(l)! - (o.locations.includes(l) ? Math.max(0, a.get(l)! - (kept.get(l) ?? 0)) : 0), 0);
            expect(left).toBeGreaterThanOrEqual(fence);
          }
          // And what `c` is shown is exactly what the write-back lets it take.
          const mine = pinsAgainst(a, t, c.id);
          expect(out[c.id]).toBe(c.locations.reduce((s, l) => s + Math.max(0, a.get(l)! - (mine.get(l) ?? 0)), 0));
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
