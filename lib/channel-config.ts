/**
 * The sales-channel configuration as every process holds it (docs/channels.md): read from
 * Postgres in one REPEATABLE READ snapshot, kept current by a watcher. The stream processor
 * reloads when Debezium delivers a change of `sales_channel_config` (its CDC topic) and polls
 * the version as a safety net; gateways poll the version (one tiny query). A configuration is
 * only ever replaced by one with a higher version.
 */
import type pg from 'pg';
import { EMPTY_CHANNEL_CONFIG, pctToBp, type ChannelConfig, type Fence, type SalesChannel, type Sourcing } from './contracts/channels.ts';
import { VersionedWatcher, type VersionedSource, type VersionedWatcherOptions } from './config-watcher.ts';
import { inTransaction } from './pg.ts';

function fenceOfRow(units: number | null, pct: string | null): Fence | null {
  if (units !== null) return { units };
  if (pct !== null) return { bp: pctToBp(Number(pct)) };
  return null;
}

/** The whole configuration, in one snapshot (the version and the rows agree). */
export async function loadChannelConfig(pool: pg.Pool): Promise<ChannelConfig> {
  return inTransaction(
    pool,
    async (c) => {
      const v = await c.query<{ version: string }>('SELECT version FROM sales_channel_config WHERE id');
      const ch = await c.query<{ channel_id: string; name: string; sourcing: Sourcing; pickup_location: string | null; fence_units: number | null; fence_pct: string | null; locations: string[] | null }>(
        `SELECT s.channel_id, s.name, s.sourcing, s.pickup_location, s.fence_units, s.fence_pct,
                array_agg(l.location_id ORDER BY l.priority, l.location_id) FILTER (WHERE l.location_id IS NOT NULL) AS locations
           FROM sales_channels s LEFT JOIN sales_channel_locations l USING (channel_id)
          GROUP BY s.channel_id ORDER BY s.channel_id`,
      );
      const fences = await c.query<{ channel_id: string; sku: string; fence_units: number | null; fence_pct: string | null }>(
        'SELECT channel_id, sku, fence_units, fence_pct FROM sales_channel_fences ORDER BY sku, channel_id',
      );
      const channels = new Map<string, SalesChannel>();
      for (const r of ch.rows) {
        channels.set(r.channel_id, { id: r.channel_id, name: r.name, sourcing: r.sourcing, pickupLocation: r.pickup_location, locations: r.locations ?? [], fence: fenceOfRow(r.fence_units, r.fence_pct) });
      }
      const skuFences = new Map<string, Map<string, Fence>>();
      for (const r of fences.rows) {
        const f = fenceOfRow(r.fence_units, r.fence_pct);
        if (!f) continue;
        let m = skuFences.get(r.sku);
        if (!m) skuFences.set(r.sku, (m = new Map()));
        m.set(r.channel_id, f);
      }
      return { version: Number(v.rows[0]?.version ?? 0), channels, skuFences };
    },
    { begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' },
  );
}

export async function channelConfigVersion(pool: pg.Pool): Promise<number> {
  const r = await pool.query<{ version: string }>('SELECT version FROM sales_channel_config WHERE id');
  return Number(r.rows[0]?.version ?? 0);
}

export type ChannelWatcherOptions = VersionedWatcherOptions<ChannelConfig>;

const CHANNEL_SOURCE: VersionedSource<ChannelConfig> = {
  what: 'sales channel configuration',
  empty: EMPTY_CHANNEL_CONFIG,
  load: loadChannelConfig,
  version: channelConfigVersion,
  describe: (c) => ({ channels: [...c.channels.keys()] }),
};

/**
 * Holds the current sales-channel configuration (lib/config-watcher.ts). Postgres not answering
 * at start does not stop the process: it runs with no channels (purchases naming one are refused
 * as unknown, nothing is sold on a channel's behalf) until a poll loads the configuration.
 */
export class ChannelWatcher extends VersionedWatcher<ChannelConfig> {
  constructor(opts: ChannelWatcherOptions) {
    super(CHANNEL_SOURCE, opts);
  }
}
