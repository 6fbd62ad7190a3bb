/**
 * The sales-channel configuration bench:channels measures with (tools/bench/channels.ts), as the
 * contracts' ChannelConfig (lib/contracts/channels.ts) so that a unit test can check, with the
 * same rule the processor folds, what the benchmark relies on: the followed channel's figure moves
 * with every change at the first location. Pure; `writeChannelConfig` is the one function that
 * talks to Postgres.
 */
import type pg from 'pg';
import type { ChannelConfig, Fence, SalesChannel, Sourcing } from '../../../lib/contracts/channels.ts';
import { inTransaction } from '../../../lib/pg.ts';
import { benchSku } from './update-load.ts';

/** Per channel: its locations (indexes into the five), its default fence, its sourcing rule. */
const LAYOUT: ReadonlyArray<{ locations: number[]; fence: Fence | null; sourcing: Sourcing }> = [
  { locations: [0, 1], fence: null, sourcing: 'priority' }, // the followed channel, sold on at the gate
  { locations: [0, 2], fence: { units: 50 }, sourcing: 'priority' },
  { locations: [1, 3], fence: { bp: 1000 }, sourcing: 'most_stock' },
  { locations: [2, 4], fence: null, sourcing: 'fewest_splits' },
  { locations: [0, 3, 4], fence: { units: 100 }, sourcing: 'priority' },
  { locations: [1, 2], fence: { bp: 500 }, sourcing: 'most_stock' },
  { locations: [3, 4], fence: { units: 20 }, sourcing: 'priority' },
  { locations: [0, 1, 2], fence: null, sourcing: 'most_stock' }, // per-SKU fences of 25 units on the first SKUs
  { locations: [2, 3], fence: { bp: 2000 }, sourcing: 'fewest_splits' },
  { locations: [1, 4], fence: null, sourcing: 'priority' },
];
export const LAYOUT_LOCATIONS = 5;
export const LAYOUT_CHANNELS = LAYOUT.length;
const PER_SKU_FENCED = 7;
const PER_SKU_FENCES = 100;
const PER_SKU_FENCE: Fence = { units: 25 };

/**
 * The layout for one run: channel ids `<idPrefix>01`..`10` (the first is the followed one), over
 * `locations` (five), per-SKU fences on the first 100 of `rows` SKUs `benchSku(skuPrefix, i)`.
 * Every other channel that serves the first location fences in units (or not at all), so a unit
 * more there is a unit more for the followed channel; percentage fences sit only on channels
 * away from it.
 */
export function channelLayout(idPrefix: string, locations: string[], skuPrefix: string, rows: number): ChannelConfig {
  if (locations.length !== LAYOUT_LOCATIONS) throw new Error(`the layout needs ${LAYOUT_LOCATIONS} locations`);
  const channels = new Map<string, SalesChannel>();
  LAYOUT.forEach((l, i) => {
    const id = `${idPrefix}${String(i + 1).padStart(2, '0')}`;
    channels.set(id, { id, name: id, sourcing: l.sourcing, pickupLocation: null, locations: l.locations.map((x) => locations[x]!), fence: l.fence });
  });
  const fenced = [...channels.keys()][PER_SKU_FENCED]!;
  const skuFences = new Map<string, Map<string, Fence>>();
  for (let i = 0; i < Math.min(rows, PER_SKU_FENCES); i++) skuFences.set(benchSku(skuPrefix, i), new Map([[fenced, PER_SKU_FENCE]]));
  return { version: 0, channels, skuFences };
}

/** Writes `config` into sales_channels, sales_channel_locations and sales_channel_fences, in one transaction. */
export async function writeChannelConfig(pool: pg.Pool, config: ChannelConfig): Promise<void> {
  const chs = [...config.channels.values()];
  const units = (f: Fence | null) => (f && 'units' in f ? f.units : null);
  const pct = (f: Fence | null) => (f && 'bp' in f ? f.bp / 100 : null);
  const locs = chs.flatMap((c) => c.locations.map((l, p) => [c.id, l, p] as const));
  const fences = [...config.skuFences].flatMap(([sku, m]) => [...m].map(([c, f]) => [c, sku, f] as const));
  await inTransaction(pool, async (c) => {
    await c.query(
      `INSERT INTO sales_channels (channel_id, name, sourcing, pickup_location, fence_units, fence_pct)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::numeric[])`,
      [chs.map((x) => x.id), chs.map((x) => x.name), chs.map((x) => x.sourcing), chs.map((x) => x.pickupLocation), chs.map((x) => units(x.fence)), chs.map((x) => pct(x.fence))],
    );
    await c.query('INSERT INTO sales_channel_locations (channel_id, location_id, priority) SELECT * FROM unnest($1::text[], $2::text[], $3::int[])', [locs.map((x) => x[0]), locs.map((x) => x[1]), locs.map((x) => x[2])]);
    await c.query('INSERT INTO sales_channel_fences (channel_id, sku, fence_units, fence_pct) SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::numeric[])', [
      fences.map((x) => x[0]),
      fences.map((x) => x[1]),
      fences.map((x) => units(x[2])),
      fences.map((x) => pct(x[2])),
    ]);
  });
}
