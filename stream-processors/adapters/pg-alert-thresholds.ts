/**
 * The low-stock thresholds (stock_alert_thresholds, migration 0014) as the processor holds them:
 * loaded whole at start, then reloaded every `refreshMs` (docs/stream-processors.md, "Stock
 * alerts": why a periodic reload and not CDC). A failed reload keeps the table it had.
 */
import type pg from 'pg';
import { errorMessage } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { thresholdKey, thresholdProblem, type ThresholdTable } from '../domain/alerts.ts';

/** Every threshold row; a row the table's checks should have refused is skipped with a warning. */
export async function loadThresholds(pool: pg.Pool, defaultThreshold: number, log?: Logger): Promise<ThresholdTable> {
  const { rows } = await pool.query<{ sku: string; channel: string; low_stock: number }>(`SELECT sku, channel, low_stock FROM stock_alert_thresholds`);
  const bySkuChannel = new Map<string, number>();
  for (const r of rows) {
    const problem = thresholdProblem(r.low_stock);
    if (problem) {
      log?.warn({ sku: r.sku, channel: r.channel, lowStock: r.low_stock }, `stock alert threshold skipped: ${problem}`);
      continue;
    }
    bySkuChannel.set(thresholdKey(r.sku, r.channel === '' ? null : r.channel), r.low_stock);
  }
  return { bySkuChannel, defaultThreshold };
}

export interface ThresholdCache {
  current(): ThresholdTable;
  /** Reloads now (tests, and the first load). */
  refresh(): Promise<void>;
  stop(): void;
}

export async function startThresholdCache(deps: { pool: pg.Pool; defaultThreshold: number; refreshMs: number; log: Logger }): Promise<ThresholdCache> {
  let table = await loadThresholds(deps.pool, deps.defaultThreshold, deps.log);
  const refresh = async () => {
    try {
      table = await loadThresholds(deps.pool, deps.defaultThreshold, deps.log);
    } catch (err) {
      deps.log.warn({ err: errorMessage(err) }, 'stock alert thresholds not reloaded; keeping the previous ones');
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(() => void refresh().finally(() => timer !== undefined && schedule()), deps.refreshMs);
    timer.unref();
  };
  if (deps.refreshMs > 0) schedule();
  return {
    current: () => table,
    refresh,
    stop() {
      const t = timer;
      timer = undefined;
      if (t) clearTimeout(t);
    },
  };
}
