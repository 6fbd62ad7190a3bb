/**
 * The gateway feed's entry format (`<p>:feed`, a Redis stream): one SKU state per entry, written
 * by the stream processor and read by every gateway, the `npm start` tail and the benchmarks.
 * One encoder, one decoder, pure (the XADD/XREAD calls stay in the adapters).
 *
 * Fields, in this order: sku, available, onHand, reserved, safetyStock, version, deleted (1/0),
 * commitTs, locations (JSON array of LocationLevel), channels (JSON object channel id ->
 * available; only when sales channels are configured, docs/channels.md), and incoming (JSON
 * IncomingLevel; only when the SKU has incoming stock, backorders or a policy, docs/incoming.md).
 */
import { STOCK_ALERT_KIND_SYMBOLS, type IncomingLevel, type StockAlert, type StockAlertKind, type StockLevel } from '../../schemas/generated/avro-types.ts';

/**
 * A StockLevel as a feed reader holds it: the locations stay JSON text, since the gateway
 * forwards them to clients without inspecting them (parse with `feedLocations` when needed).
 */
export type SkuState = Omit<StockLevel, 'locations'> & {
  /** JSON array text of LocationLevel objects. */
  locationsJson: string;
  /**
   * The sales-channel configuration version the channel figures were computed with (0: none).
   * A reconfiguration republishes a SKU at the same version with a higher one: readers take a
   * state at equal (version, deleted) when its configuration is newer (isNewerState).
   */
  cfg?: number;
};

/** True when `next` supersedes `prev`: a higher (version, deleted) rank, or the same rank computed with a newer channel configuration. */
export function isNewerState(prev: SkuState | undefined, next: SkuState): boolean {
  if (!prev) return true;
  const a = prev.version * 2 + (prev.deleted ? 1 : 0);
  const b = next.version * 2 + (next.deleted ? 1 : 0);
  return b > a || (b === a && (next.cfg ?? 0) > (prev.cfg ?? 0));
}

/** The field/value list of an XADD for one SKU state. */
export function encodeFeedEntry(s: StockLevel, channelsVersion = 0): Array<string | number> {
  return [
    'sku', s.sku,
    'available', s.available,
    'onHand', s.onHand,
    'reserved', s.reserved,
    'safetyStock', s.safetyStock,
    'version', s.version,
    'deleted', s.deleted ? 1 : 0,
    'commitTs', s.commitTs,
    'locations', JSON.stringify(s.locations),
    ...(s.channels ? ['channels', JSON.stringify(s.channels), 'cfg', channelsVersion] : []),
    ...(s.incoming ? ['incoming', JSON.stringify(s.incoming)] : []),
  ];
}

/** A StockLevel in its feed-reader form (locations serialised once, as the feed carries them). */
export function toSkuState(s: StockLevel): SkuState {
  return {
    sku: s.sku,
    available: s.available,
    onHand: s.onHand,
    reserved: s.reserved,
    safetyStock: s.safetyStock,
    version: s.version,
    deleted: s.deleted,
    commitTs: s.commitTs,
    locationsJson: JSON.stringify(s.locations),
    channels: s.channels,
    incoming: s.incoming,
  };
}

/**
 * One entry's field/value list (as XREAD / XRANGE return it) as a SKU state; undefined for an
 * entry without a SKU. Missing numbers read as 0, missing locations as none.
 */
export function decodeFeedEntry(fields: readonly string[]): SkuState | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  if (!f.sku) return undefined;
  const n = (k: string) => Number(f[k] ?? 0);
  return {
    sku: f.sku,
    available: n('available'),
    onHand: n('onHand'),
    reserved: n('reserved'),
    safetyStock: n('safetyStock'),
    version: n('version'),
    deleted: f.deleted === '1',
    commitTs: n('commitTs'),
    locationsJson: f.locations ?? '[]',
    channels: f.channels ? parseChannels(f.channels) : null,
    incoming: f.incoming ? parseIncoming(f.incoming) : null,
    ...(f.cfg ? { cfg: n('cfg') } : {}),
  };
}

/** A feed entry's incoming figures; null for text that is not an IncomingLevel. */
export function parseIncoming(text: string): IncomingLevel | null {
  try {
    const v = JSON.parse(text) as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    const whole = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
    if (!whole(v.incoming) || !whole(v.backordered) || !whole(v.backorderable) || typeof v.policy !== 'string') return null;
    if (v.nextEta !== null && !whole(v.nextEta)) return null;
    return { incoming: v.incoming as number, nextEta: v.nextEta as number | null, backordered: v.backordered as number, backorderable: v.backorderable as number, policy: v.policy };
  } catch {
    return null;
  }
}

/** A feed entry's channel figures; null for text that is not an object of non-negative integers. */
export function parseChannels(text: string): Record<string, number> | null {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    const out: Record<string, number> = {};
    for (const [k, n] of Object.entries(v)) {
      if (!Number.isSafeInteger(n) || (n as number) < 0) return null;
      out[k] = n as number;
    }
    return out;
  } catch {
    return null;
  }
}

/** The per-location breakdown of a decoded state. */
export function feedLocations(s: SkuState): StockLevel['locations'] {
  return JSON.parse(s.locationsJson) as StockLevel['locations'];
}

// ---------------------------------------------------------------------------------------------
// Alert entries (`<p>:alerts`, a Redis stream beside the feed): one StockAlert per entry, written
// by the stream processor after the alert step, read by every gateway for `alert` frames. A
// separate stream, not a field of the feed entry: the gateway coalesces feed entries per SKU
// (newest state wins) and an alert must never be coalesced away.
//
// Fields, in this order: alertId, sku, channel ('' for the pooled figure), kind, available,
// threshold, version, commitTs.

const ALERT_KIND_SET: ReadonlySet<string> = new Set<StockAlertKind>(STOCK_ALERT_KIND_SYMBOLS);

/** The field/value list of an XADD for one alert. */
export function encodeAlertEntry(a: StockAlert): Array<string | number> {
  return [
    'alertId', a.alertId,
    'sku', a.sku,
    'channel', a.channel ?? '',
    'kind', a.kind,
    'available', a.available,
    'threshold', a.threshold,
    'version', a.version,
    'commitTs', a.commitTs,
  ];
}

/** One alert entry's field/value list as a StockAlert; undefined for an entry that is not one. */
export function decodeAlertEntry(fields: readonly string[]): StockAlert | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  if (!f.alertId || !f.sku || !f.kind || !ALERT_KIND_SET.has(f.kind)) return undefined;
  const n = (k: string) => Number(f[k] ?? 0);
  return {
    alertId: f.alertId,
    sku: f.sku,
    channel: f.channel ? f.channel : null,
    kind: f.kind as StockAlertKind,
    available: n('available'),
    threshold: n('threshold'),
    version: n('version'),
    commitTs: n('commitTs'),
  };
}
