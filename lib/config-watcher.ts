/**
 * A configuration read from Postgres and kept current by polling a version (the one-row version
 * tables bumped by statement triggers: `sales_channel_config` in migration 0015, `kit_config` in
 * 0017). One load is one consistent snapshot whose version orders it; a configuration is only ever
 * replaced by one with a higher version. Used by lib/channel-config.ts (ChannelWatcher) and
 * lib/kit-config.ts (KitWatcher).
 */
import type pg from 'pg';
import { errorMessage } from './errors.ts';
import type { Logger } from './logger.ts';

export interface VersionedWatcherOptions<T extends { version: number }> {
  pool: pg.Pool;
  log: Logger;
  /** How often the version is polled; 0 = never (reload() only). */
  pollMs: number;
  /** Called after a newer configuration was installed (awaited; a failure is logged and retried at the next poll). */
  onChange?: (next: T, previous: T) => Promise<void> | void;
}

export interface VersionedSource<T extends { version: number }> {
  /** What the configuration is called in log lines. */
  what: string;
  empty: T;
  load(pool: pg.Pool): Promise<T>;
  version(pool: pg.Pool): Promise<number>;
  /** Log fields of a newly loaded configuration. */
  describe?(config: T): Record<string, unknown>;
}

/**
 * Holds the current configuration. `reload()` may be called at any time (a CDC event, a stale
 * figure found by a script); concurrent calls share one load.
 */
export class VersionedWatcher<T extends { version: number }> {
  private current: T;
  private loading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pendingChange: T | undefined;
  private retryLoad = false;

  constructor(
    private readonly source: VersionedSource<T>,
    private readonly opts: VersionedWatcherOptions<T>,
  ) {
    this.current = source.empty;
  }

  get config(): T {
    return this.current;
  }

  /**
   * Loads once, then polls. Postgres not answering at start does not stop the process: it runs
   * with the empty configuration until a poll loads the real one.
   */
  async start(): Promise<void> {
    try {
      this.current = await this.source.load(this.opts.pool);
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err) }, `${this.source.what}: not loaded at start; retrying at every poll`);
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
      if (this.retryLoad || this.pendingChange || (await this.source.version(this.opts.pool)) > this.current.version) {
        await this.reload();
        this.retryLoad = false;
      }
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err) }, `${this.source.what}: version poll failed; retrying`);
    }
  }

  reload(): Promise<void> {
    this.loading ??= this.doReload().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async doReload(): Promise<void> {
    const next = await this.source.load(this.opts.pool);
    const previous = this.current;
    if (next.version > previous.version) {
      this.current = next;
      this.pendingChange = next;
      this.opts.log.info({ version: next.version, ...this.source.describe?.(next) }, `${this.source.what} loaded`);
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
