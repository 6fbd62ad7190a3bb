import { describe, expect, it } from 'vitest';
import type { SkuState } from '../lib/contracts/feed.ts';
import { kitCatalog, type KitCatalog } from '../lib/contracts/kits.ts';
import type { SkuRows } from '../lib/contracts/stock-view.ts';
import { createLogger } from '../lib/logger.ts';
import type { FeedEntry } from './adapters/feed.ts';
import { KitFanout } from './kit-fanout.ts';

const logger = createLogger({ level: 'silent' });

function entry(id: string, sku: string, available: number, version: number): FeedEntry {
  const state: SkuState = { sku, available, onHand: available, reserved: 0, safetyStock: 0, version, deleted: false, commitTs: version, locationsJson: '[]', channels: null, incoming: null };
  return { id, rts: 1, state };
}

/** A hub that records what it is given; `followed` are the SKUs somebody subscribed to. */
function fakeHub(followed: string[]) {
  const published: FeedEntry[] = [];
  return { published, publish: (e: FeedEntry[]) => void published.push(...e), subscribersOf: (sku: string) => (followed.includes(sku) ? [{}] : []) };
}

/** Views holding one row per SKU (available = on hand), as the processor would. */
function fakeViews(rows: Record<string, { onHand: number; version: number }>) {
  const reads: string[][] = [];
  return {
    reads,
    readRows: async (skus: string[]) => {
      reads.push(skus);
      const out = new Map<string, SkuRows>();
      for (const s of skus) {
        const r = rows[s];
        if (r) out.set(s, { 'WH-1': { onHand: r.onHand, reserved: 0, safetyStock: 0, version: r.version, deleted: false, commitTs: r.version } });
      }
      return out;
    },
  };
}

const flush = () => new Promise((r) => setImmediate(r));
const catalog: KitCatalog = kitCatalog(1, [{ sku: 'K', base: 100, components: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 2 }] }]);

describe('KitFanout', () => {
  it('turns a component change into the kit\'s state for the hub, reading components it has not seen from the views', async () => {
    const hub = fakeHub(['K']);
    const views = fakeViews({ B: { onHand: 9, version: 7 } });
    const f = new KitFanout({ hub, kits: { config: catalog }, views, logger });
    f.publish([entry('1-0', 'A', 10, 5)]);
    await flush();
    expect(views.reads).toEqual([['B']]);
    expect(hub.published.map((e) => [e.state.sku, e.state.available, e.state.version])).toEqual([['K', 4, 100 + 5 + 7]]);
    // The next change of B comes from the feed: no read, a higher version.
    f.publish([entry('2-0', 'B', 3, 9)]);
    await flush();
    expect(views.reads).toHaveLength(1);
    expect(hub.published.at(-1)!.state).toMatchObject({ sku: 'K', available: 1, version: 100 + 5 + 9 });
  });

  it('ignores older or repeated component states, and kits nobody follows', async () => {
    const hub = fakeHub([]);
    const views = fakeViews({ B: { onHand: 9, version: 7 } });
    const f = new KitFanout({ hub, kits: { config: catalog }, views, logger });
    f.publish([entry('1-0', 'A', 10, 5)]);
    await flush();
    expect(hub.published).toEqual([]); // not followed: no work
    const followed = fakeHub(['K']);
    const g = new KitFanout({ hub: followed, kits: { config: catalog }, views, logger });
    g.publish([entry('1-0', 'A', 10, 5), entry('1-1', 'B', 9, 7)]);
    await flush();
    g.publish([entry('2-0', 'A', 99, 4), entry('2-1', 'A', 10, 5), entry('2-2', 'X', 1, 50)]);
    await flush();
    expect(followed.published.map((e) => e.state.version)).toEqual([112]);
  });

  it('gives a resumed subscription the kits\' current states', async () => {
    const f = new KitFanout({ hub: fakeHub([]), kits: { config: catalog }, views: fakeViews({ A: { onHand: 3, version: 2 }, B: { onHand: 4, version: 3 } }), logger });
    const out = await f.entriesFor(['K', 'A', 'nope']);
    expect(out.map((e) => [e.state.sku, e.state.available, e.state.version])).toEqual([['K', 2, 105]]);
  });
});
