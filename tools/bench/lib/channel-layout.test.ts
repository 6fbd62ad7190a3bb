import { describe, expect, it } from 'vitest';
import { channelAvailability, channelTerms, CHANNEL_ID } from '../../../lib/contracts/channels.ts';
import { channelLayout, LAYOUT_CHANNELS, LAYOUT_LOCATIONS } from './channel-layout.ts';
import { benchSku } from './update-load.ts';

const locations = Array.from({ length: LAYOUT_LOCATIONS }, (_, i) => `BCH-x-L${i + 1}`);
const layout = channelLayout('bench-mx3x1eka-1ba0-', locations, 'BCH-x-', 1000);
const ids = [...layout.channels.keys()];
const followed = ids[0]!;

/** Every channel's figure for `sku` with 1,000 units at every location and `extra` more at the first. */
function figures(sku: string, extra: number): Record<string, number> {
  const avail = new Map(locations.map((l, i) => [l, 1000 + (i === 0 ? extra : 0)]));
  return channelAvailability(avail, channelTerms(layout, sku));
}

describe('the bench:channels layout', () => {
  it('has ten valid channels of two or three of the five locations', () => {
    expect(ids).toHaveLength(LAYOUT_CHANNELS);
    expect(LAYOUT_CHANNELS).toBe(10);
    for (const c of layout.channels.values()) {
      expect(c.id).toMatch(CHANNEL_ID);
      expect(c.locations.length).toBeGreaterThanOrEqual(2);
      expect(c.locations.length).toBeLessThanOrEqual(3);
      expect(c.locations.every((l) => locations.includes(l))).toBe(true);
    }
    expect(new Set([...layout.channels.values()].flatMap((c) => c.locations))).toEqual(new Set(locations));
  });

  it('moves the followed channel\'s figure by one for every unit added at the first location, per-SKU fence or not', () => {
    for (const sku of [benchSku('BCH-x-', 0), benchSku('BCH-x-', 500)]) {
      for (let k = 0; k < 40; k++) expect(figures(sku, k + 1)[followed]! - figures(sku, k)[followed]!).toBe(1);
    }
  });

  it('lets other channels\' fences bite: the followed figure is below its pooled locations', () => {
    const fenced = figures(benchSku('BCH-x-', 0), 0)[followed]!;
    const unfenced = figures(benchSku('BCH-x-', 500), 0)[followed]!;
    expect(unfenced).toBeLessThan(2000);
    expect(fenced).toBe(unfenced - 25); // the per-SKU fence of 25 units on a channel sharing the first location
  });

  it('puts per-SKU fences on the first 100 SKUs only', () => {
    expect(layout.skuFences.size).toBe(100);
    expect(layout.skuFences.has(benchSku('BCH-x-', 99))).toBe(true);
    expect(layout.skuFences.has(benchSku('BCH-x-', 100))).toBe(false);
    expect(channelLayout('b-', locations, 'S-', 30).skuFences.size).toBe(30);
  });

  it('refuses a number of locations it was not made for', () => {
    expect(() => channelLayout('b-', locations.slice(0, 4), 'S-', 10)).toThrow(/5 locations/);
  });
});
