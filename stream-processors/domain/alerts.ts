/**
 * Stock alerts, pure: the edge-triggered state machine per (sku, channel), the hysteresis band,
 * threshold resolution, the alert id, and which availability figures a SKU state yields. The
 * specification of stream-processors/lua/alert-step-1.lua (an integration test runs both on the
 * same random sequences and compares); docs/stream-processors.md "Stock alerts" explains the rules.
 *
 * Owns: the rules. Must not: read Redis, Postgres or Kafka (adapters/, processor.ts do).
 */
import { CHANNEL_ID } from '../../lib/contracts/channels.ts';
import { STOCK_ALERT_KIND_SYMBOLS, type StockAlert, type StockAlertKind } from '../../schemas/generated/avro-types.ts';

/** Where a (sku, channel) stands: armed above the band, low (already alerted), out of stock. */
export type AlertState = 'in_stock' | 'low' | 'out';

/** The kinds come from the Avro schema (schemas/avro/StockAlert.avsc), never a hand copy. */
export const ALERT_KINDS = STOCK_ALERT_KIND_SYMBOLS;
export type AlertKind = StockAlertKind;

/** A sales channel id (lib/contracts/channels.ts); `null` is the pooled figure. */
export { CHANNEL_ID };

/** Largest threshold accepted anywhere (config, table check): beyond any SKU's plausible stock. */
export const MAX_THRESHOLD = 1_000_000_000;

/**
 * The level at which a `low` (sku, channel) is armed again for the next LOW_STOCK:
 * threshold + max(1, ceil(threshold / 10)). Between the threshold and this level nothing
 * changes state, so a figure oscillating around the threshold fires once.
 */
export function rearmLevel(threshold: number): number {
  return threshold + Math.max(1, Math.ceil(threshold / 10));
}

/** The state a (sku, channel) starts in when first seen: no alert, whatever the figure. */
export function initialAlertState(available: number, threshold: number): AlertState {
  if (available <= 0) return 'out';
  return available < threshold ? 'low' : 'in_stock';
}

export interface AlertStep {
  state: AlertState;
  kind: AlertKind | null;
}

/**
 * One availability figure through the machine (threshold 0 = no low-stock alerts):
 * - reaching 0 from in_stock or low: OUT_OF_STOCK -> out;
 * - out, rising above 0: BACK_IN_STOCK -> in_stock at rearmLevel(threshold) or more, else low
 *   (no separate LOW_STOCK: the alert carries available and threshold; a figure in the band
 *   came from below, so like any rising figure it re-arms only at the re-arm level);
 * - in_stock, falling below the threshold (but not to 0): LOW_STOCK -> low;
 * - low, rising to rearmLevel(threshold) or more: in_stock, silently (re-armed);
 * - anything else: unchanged, no alert.
 * An unknown previous state (first figure seen) starts silently (initialAlertState).
 */
export function stepAlert(prev: AlertState | undefined, available: number, threshold: number): AlertStep {
  if (prev === undefined) return { state: initialAlertState(available, threshold), kind: null };
  if (available <= 0) return prev === 'out' ? { state: 'out', kind: null } : { state: 'out', kind: 'OUT_OF_STOCK' };
  if (prev === 'out') return { state: available >= rearmLevel(threshold) ? 'in_stock' : 'low', kind: 'BACK_IN_STOCK' };
  if (prev === 'in_stock') return available < threshold ? { state: 'low', kind: 'LOW_STOCK' } : { state: 'in_stock', kind: null };
  return available >= rearmLevel(threshold) ? { state: 'in_stock', kind: null } : { state: 'low', kind: null };
}

/** The alerts a sequence of figures fires from an initial state (the reference the tests use). */
export function runAlerts(figures: readonly number[], threshold: number, start?: AlertState): Array<{ index: number; kind: AlertKind }> {
  const out: Array<{ index: number; kind: AlertKind }> = [];
  let state = start;
  figures.forEach((available, index) => {
    const s = stepAlert(state, available, threshold);
    state = s.state;
    if (s.kind) out.push({ index, kind: s.kind });
  });
  return out;
}

/**
 * The crossings of the hysteresis band in a sequence of figures, the bound on the alerts it can
 * fire (a unit property): regions are 0 (a <= 0), below (0 < a < threshold), above
 * (a >= rearmLevel) and the band between; a figure in the band counts only when it comes from 0
 * (passing 0 upwards), otherwise the last region outside the band holds. The first figure only
 * sets the region (a band figure as above, as initialAlertState does).
 */
export function bandCrossings(figures: readonly number[], threshold: number): number {
  const region = (a: number) => (a <= 0 ? 'zero' : a < threshold ? 'below' : a >= rearmLevel(threshold) ? 'above' : 'band');
  let last: string | undefined;
  let n = 0;
  for (const a of figures) {
    const r = region(a);
    if (last === undefined) last = r === 'band' ? 'above' : r;
    else if (r === 'band') {
      if (last === 'zero') [n, last] = [n + 1, 'below'];
    } else if (r !== last) [n, last] = [n + 1, r];
  }
  return n;
}

/** The SKU state as alerts read it: the pooled figure and, with sales channels, one per channel. */
export interface AlertSource {
  available: number;
  /** channel id -> that channel's available (sales channels, when present). */
  channels?: Record<string, number> | null;
}

export interface AlertInput {
  channel: string | null;
  available: number;
}

/** The figures alerts are decided on: the pooled one (channel null), then each channel's, by id. */
export function alertInputs(summary: AlertSource): AlertInput[] {
  const inputs: AlertInput[] = [{ channel: null, available: summary.available }];
  for (const channel of Object.keys(summary.channels ?? {}).sort()) {
    if (CHANNEL_ID.test(channel)) inputs.push({ channel, available: summary.channels![channel]! });
  }
  return inputs;
}

/** Per-SKU and per-(sku, channel) thresholds as loaded from stock_alert_thresholds. */
export interface ThresholdTable {
  /** key thresholdKey(sku, channel) -> low-stock threshold. */
  readonly bySkuChannel: ReadonlyMap<string, number>;
  readonly defaultThreshold: number;
}

/** The table's key: channel '' is the row for every channel of the SKU (and the pooled figure). */
export function thresholdKey(sku: string, channel: string | null): string {
  return `${channel ?? ''}\u0000${sku}`;
}

/** A (sku, channel)'s threshold: its own row, else the SKU's row, else the default. */
export function thresholdFor(table: ThresholdTable, sku: string, channel: string | null): number {
  if (channel !== null) {
    const own = table.bySkuChannel.get(thresholdKey(sku, channel));
    if (own !== undefined) return own;
  }
  return table.bySkuChannel.get(thresholdKey(sku, null)) ?? table.defaultThreshold;
}

/** Why a threshold is refused, or null when it is acceptable (a whole number 0..MAX_THRESHOLD). */
export function thresholdProblem(value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isInteger(value)) return 'must be a whole number';
  if (value < 0) return 'must not be negative';
  if (value > MAX_THRESHOLD) return `must be at most ${MAX_THRESHOLD}`;
  return null;
}

/**
 * The alert's stable id: the same decision re-emitted after a retry carries the same id, so
 * consumers de-duplicate on it. Unambiguous from the right: channel ids hold no '|'.
 */
export function alertId(a: { sku: string; channel: string | null; version: number; kind: AlertKind }): string {
  return `${a.sku}|${a.channel ?? ''}|${a.version}|${a.kind}`;
}

/** An alert as the processor publishes it (Avro StockAlert), with its id. */
export function toStockAlert(a: Omit<StockAlert, 'alertId'>): StockAlert {
  return { alertId: alertId(a), ...a };
}
