/**
 * Rebuild and reconciliation of the Redis views from Postgres (invariant 2: Redis is derived and
 * must converge to Postgres). Both are safe while CDC keeps flowing: every write goes through the
 * same version-guarded apply script as the processor, so no version ever goes backwards.
 *
 *   rebuild:    applies every Postgres row (pipelined, a page of SKUs at a time), then removes
 *               rows Redis holds that Postgres no longer has.
 *   reconcile:  compares Redis with Postgres, then re-checks the differences after a short
 *               settle time (CDC in flight is not drift) and reports what persists; with repair,
 *               fixes it.
 * Repaired SKUs are appended to the gateway feed so connected channels see the fix.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { GateAudit, GateCheck } from '../purchase/gate-audit.ts';
import type { StockLevel } from '../schemas/generated/avro-types.ts';
import type { RedisViews } from './adapters/redis-views.ts';
import { countRows, pagesBySku, rowsFor } from './adapters/pg-stock.ts';
import { diffSku, repairFor, type DriftItem } from './domain/reconcile.ts';
import { incomingFields, type RowChange, type SkuRows } from './domain/fold.ts';

export interface Progress {
  (done: number, total: number): void;
}

export interface MaintenanceDeps {
  pool: pg.Pool;
  views: RedisViews;
  feedMaxLen: number;
  /** When given, reconciliation also checks the purchase gate's terms (docs/purchase-path.md). */
  gate?: GateAudit;
}

/**
 * Applies changes (one script call per SKU); returns how many were applied and the announcement
 * of the changed SKUs on the feed, still in flight so that a caller may overlap it with its
 * next page.
 */
async function applyAndAnnounce(deps: MaintenanceDeps, changes: RowChange[], force: boolean): Promise<{ applied: number; announced: Promise<unknown> }> {
  const bySku = new Map<string, RowChange[]>();
  for (const c of changes) {
    const list = bySku.get(c.sku);
    if (list) list.push(c);
    else bySku.set(c.sku, [c]);
  }
  const results = await deps.views.applySkus([...bySku.values()], { force });
  let applied = 0;
  const changed: StockLevel[] = [];
  for (const r of results) {
    const n = r.outcomes.filter((o) => o === 'applied').length;
    applied += n;
    if (n > 0) changed.push(r.summary);
  }
  return { applied, announced: deps.views.appendFeed(changed, deps.feedMaxLen) };
}

async function applyAndWait(deps: MaintenanceDeps, changes: RowChange[], force: boolean): Promise<number> {
  const { applied, announced } = await applyAndAnnounce(deps, changes, force);
  await announced;
  return applied;
}

function rowChanges(pages: Map<string, SkuRows>): RowChange[] {
  const out: RowChange[] = [];
  for (const [sku, rows] of pages) {
    for (const [locationId, r] of Object.entries(rows)) {
      out.push({ sku, locationId, deleted: false, onHand: r.onHand, reserved: r.reserved, safetyStock: r.safetyStock, version: r.version, commitTs: r.commitTs, ...incomingFields(r) });
    }
  }
  return out;
}

export interface RebuildResult {
  rows: number;
  applied: number;
  removed: number;
  seconds: number;
}

export async function rebuildViews(
  deps: MaintenanceDeps,
  { skuPrefix = '', progress }: { skuPrefix?: string; progress?: Progress } = {},
): Promise<RebuildResult> {
  const started = performance.now();
  const total = await countRows(deps.pool, skuPrefix);
  let rows = 0;
  let applied = 0;
  progress?.(0, total);
  const pages = pagesBySku(deps.pool, { skuPrefix, skusPerPage: 5000 });
  // Read the next page from Postgres while the current one is applied to Redis.
  let next = pages.next();
  let announcing: Promise<unknown> = Promise.resolve();
  for (;;) {
    const page = await next;
    if (page.done) break;
    next = pages.next();
    const changes = rowChanges(page.value);
    const res = await applyAndAnnounce(deps, changes, false);
    // The previous page's feed entries were written while this page was applied.
    await announcing;
    announcing = res.announced;
    applied += res.applied;
    rows += changes.length;
    progress?.(rows, total);
  }
  await announcing;
  const removed = await removeRowsMissingInPostgres(deps, skuPrefix);
  return { rows, applied, removed, seconds: (performance.now() - started) / 1000 };
}

/** Rows Redis holds (live) for SKUs or locations Postgres does not have: marks them deleted. */
async function removeRowsMissingInPostgres(deps: MaintenanceDeps, skuPrefix: string): Promise<number> {
  let removed = 0;
  for await (const skus of deps.views.scanSkus()) {
    const mine = skus.filter((s) => s.startsWith(skuPrefix));
    if (!mine.length) continue;
    const [pgRows, redisRows] = await Promise.all([rowsFor(deps.pool, mine), deps.views.readRows(mine)]);
    const items = mine.flatMap((sku) => diffSku(sku, pgRows.get(sku) ?? {}, redisRows.get(sku) ?? {}).filter((d) => d.kind === 'missing_in_postgres'));
    if (items.length) removed += await applyAndWait(deps, items.map((i) => repairFor(i).change), false);
  }
  return removed;
}

export interface ReconcileResult {
  checkedRows: number;
  /** Differences that persisted after the settle time. */
  drift: DriftItem[];
  /** Differences seen at first and gone after the settle time (CDC in flight). */
  transient: number;
  repaired: number;
  /** SKUs whose sales-channel figures disagreed with their rows (recomputed with `repair`; docs/channels.md). */
  channelDrift: string[];
  /** Purchase-gate SKUs whose terms disagreed with their hold records (repaired with `repair`). */
  gateDrift: GateCheck[];
  gateChecked: number;
  seconds: number;
}

async function diffSkus(deps: MaintenanceDeps, skus: string[]): Promise<DriftItem[]> {
  const [pgRows, redisRows] = await Promise.all([rowsFor(deps.pool, skus), deps.views.readRows(skus)]);
  return skus.flatMap((sku) => diffSku(sku, pgRows.get(sku) ?? {}, redisRows.get(sku) ?? {}));
}

export async function reconcileViews(
  deps: MaintenanceDeps,
  { repair = false, skuPrefix = '', settleMs = 2000, progress }: { repair?: boolean; skuPrefix?: string; settleMs?: number; progress?: Progress } = {},
): Promise<ReconcileResult> {
  const started = performance.now();
  const total = await countRows(deps.pool, skuPrefix);
  let checkedRows = 0;
  const suspects = new Set<string>();
  progress?.(0, total);
  for await (const page of pagesBySku(deps.pool, { skuPrefix, skusPerPage: 5000 })) {
    const skus = [...page.keys()];
    const redisRows = await deps.views.readRows(skus);
    for (const sku of skus) {
      const pgRows = page.get(sku)!;
      checkedRows += Object.keys(pgRows).length;
      if (diffSku(sku, pgRows, redisRows.get(sku) ?? {}).length) suspects.add(sku);
    }
    progress?.(checkedRows, total);
  }
  // SKUs only Redis knows.
  for await (const skus of deps.views.scanSkus()) {
    const mine = skus.filter((s) => s.startsWith(skuPrefix) && !suspects.has(s));
    if (!mine.length) continue;
    const pgRows = await rowsFor(deps.pool, mine);
    for (const sku of mine) if (Object.keys(pgRows.get(sku) ?? {}).length === 0) suspects.add(sku);
  }
  let drift: DriftItem[] = [];
  let transient = 0;
  if (suspects.size) {
    const first = await diffSkus(deps, [...suspects]);
    if (settleMs > 0) await sleep(settleMs);
    drift = await diffSkus(deps, [...new Set(first.map((d) => d.sku))]);
    const key = (d: DriftItem) => `${d.sku}\u0000${d.locationId}\u0000${d.kind}`;
    const persisted = new Set(drift.map(key));
    transient = first.filter((d) => !persisted.has(key(d))).length;
  }
  let repaired = 0;
  if (repair && drift.length) {
    const plain = drift.map(repairFor).filter((r) => !r.force).map((r) => r.change);
    const forced = drift.map(repairFor).filter((r) => r.force).map((r) => r.change);
    repaired += await applyAndWait(deps, plain, false);
    repaired += await applyAndWait(deps, forced, true);
  }
  // Sales-channel figures against the rows they are computed from (both in Redis: exact).
  const channelDrift: string[] = [];
  if (deps.views.channels.config.channels.size > 0) {
    for await (const skus of deps.views.scanSkus()) {
      const mine = skus.filter((s) => s.startsWith(skuPrefix));
      const off = await deps.views.channelDrift(mine);
      channelDrift.push(...off);
      if (repair && off.length) await deps.views.appendFeed(await deps.views.recomputeChannels(off), deps.feedMaxLen);
    }
  }
  // The gate's terms: exact and atomic per SKU (no CDC in flight to wait for).
  const gateDrift: GateCheck[] = [];
  let gateChecked = 0;
  if (deps.gate) {
    for await (const page of deps.gate.scanGateSkus()) {
      const mine = page.filter((s) => s.startsWith(skuPrefix));
      gateChecked += mine.length;
      for (const c of await deps.gate.check(mine, repair)) if (c.drift) gateDrift.push(c);
    }
  }
  return { checkedRows, drift, transient, repaired, channelDrift, gateDrift, gateChecked, seconds: (performance.now() - started) / 1000 };
}
