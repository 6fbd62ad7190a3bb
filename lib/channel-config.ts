/**
 * The sales-channel configuration as every process holds it (docs/channels.md): read from
 * Postgres in one REPEATABLE READ snapshot, kept current by a watcher. The stream processor
 * reloads when Debezium delivers a change of `sales_channel_config` (its CDC topic) and polls
 * the version as a safety net; gateways poll the version (one tiny query). A configuration is
 * only ever replaced by one with a higher version.
 */
import type pg from 'pg';
import { EMPTY_CHANNEL_CONFIG, pctToBp, type ChannelConfig, type Fence, type SalesChannel, type Sourcing } from './contracts/channels.ts';
import { errorMessage } from './errors.ts';
import type { Logger } from './logger.ts';
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

export interface ChannelWatcherOptions {
  pool: pg.Pool;
  log: Logger;
  /** How often the version is polled; 0 = never (reload() only). */
  pollMs: number;
  /** Called after a newer configuration was installed (awaited; a failure is logged and retried at the next poll). */
  onChange?: (next: ChannelConfig, previous: ChannelConfig) => Promise<void> | void;
}

/**
 * Holds the current configuration. `reload()` may be called at any time (a CDC event, a stale
 * figure found by the apply script); concurrent calls share one load.
 */
export class ChannelWatcher {
  private current: ChannelConfig = EMPTY_CHANNEL_CONFIG;
  private loading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pendingChange: ChannelConfig | undefined;
  private retryLoad = false;

  constructor(private readonly opts: ChannelWatcherOptions) {}

  get config(): ChannelConfig {
    return this.current;
  }

  /**
   * Loads once, then polls. Postgres not answering at start does not stop the process: it runs
   * with no channels (purchases naming one are refused as unknown, nothing is sold on a channel's
   * behalf) until a poll loads the configuration.
   */
  async start(): Promise<void> {
    try {
      this.current = await loadChannelConfig(this.opts.pool);
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err) }, 'sales channel configuration: not loaded at start; retrying at every poll');
      this.retryLoad = true;
    }
    if (this.opts.pollMs > 0) {
      this.timer = setInterval(() => void this.poll(), this.opts.pollMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    try {
      if (this.retryLoad || this.pendingChange || (await channelConfigVersion(this.opts.pool)) > this.current.version) {
        await this.reload();
        this.retryLoad = false;
      }
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err) }, 'sales channel configuration: version poll failed; retrying');
    }
  }

  reload(): Promise<void> {
    this.loading ??= this.doReload().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async doReload(): Promise<void> {
    const next = await loadChannelConfig(this.opts.pool);
    const previous = this.current;
    if (next.version > previous.version) {
      this.current = next;
      this.pendingChange = next;
      this.opts.log.info({ version: next.version, channels: [...next.channels.keys()] }, 'sales channel configuration loaded');
    }
    if (this.pendingChange && this.opts.onChange) {
      const change = this.pendingChange;
      await this.opts.onChange(change, previous);
      if (this.pendingChange === change) this.pendingChange = undefined;
    } else {
      this.pendingChange = undefined;
    }
  }
}
