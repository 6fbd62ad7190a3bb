/**
 * The gateway feed's entry format (`<p>:feed`, a Redis stream), written by the stream processor and
 * read by every gateway, the `npm start` tail and the benchmarks. An entry is one SKU state, or a
 * pack of several (encodeFeedPack): a batch's states go out in a few XADDs instead of one each.
 * Readers take both (decodeFeedStates). Encoders and decoders are pure (the XADD/XREAD calls stay
 * in the adapters).
 *
 * One state's fields, in this order: sku, available, onHand, reserved, safetyStock, version, deleted (1/0),
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

/** Incoming figures as an IncomingLevel; null for a value that is not one. */
function incomingOf(v: unknown): IncomingLevel | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const whole = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!whole(o.incoming) || !whole(o.backordered) || !whole(o.backorderable) || typeof o.policy !== 'string') return null;
  if (o.nextEta !== null && !whole(o.nextEta)) return null;
  return { incoming: o.incoming as number, nextEta: o.nextEta as number | null, backordered: o.backordered as number, backorderable: o.backorderable as number, policy: o.policy };
}

/** Channel figures; null for a value that is not an object of non-negative integers. */
function channelsOf(v: unknown): Record<string, number> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    if (!Number.isSafeInteger(n) || (n as number) < 0) return null;
    out[k] = n as number;
  }
  return out;
}

function parsed<T>(text: string, of: (v: unknown) => T | null): T | null {
  try {
    return of(JSON.parse(text));
  } catch {
    return null;
  }
}

/** A feed entry's incoming figures; null for text that is not an IncomingLevel. */
export function parseIncoming(text: string): IncomingLevel | null {
  return parsed(text, incomingOf);
}

/** A feed entry's channel figures; null for text that is not an object of non-negative integers. */
export function parseChannels(text: string): Record<string, number> | null {
  return parsed(text, channelsOf);
}

// ---------------------------------------------------------------------------------------------
// Packs: several states in one entry, the field/value list `['pack', <JSON array>]` with one array
// per state: [sku, available, onHand, reserved, safetyStock, version, deleted (1/0), commitTs,
// locations (JSON text, as the single-state entry carries it), channels (object or null), cfg,
// incoming (object or null)]. The stream keeps about FEED_MAXLEN states either way: a pack of n
// states is added with MAXLEN ~ FEED_MAXLEN / n (feedTrimLength).

/** The most states in one pack: bounds an entry's size (about 300 bytes a state) and a reader's parse. */
export const FEED_PACK_MAX = 100;

/** The field/value list of an XADD for several SKU states (at most FEED_PACK_MAX: the caller splits). */
export function encodeFeedPack(states: readonly StockLevel[], channelsVersion = 0): ['pack', string] {
  const rows = new Array<unknown[]>(states.length);
  for (let i = 0; i < states.length; i++) {
    const s = states[i]!;
    rows[i] = [s.sku, s.available, s.onHand, s.reserved, s.safetyStock, s.version, s.deleted ? 1 : 0, s.commitTs, JSON.stringify(s.locations), s.channels ?? null, s.channels ? channelsVersion : 0, s.incoming ?? null];
  }
  return ['pack', JSON.stringify(rows)];
}

/** The MAXLEN of an XADD that adds `states` states, so that the stream holds about `maxLen` states. */
export function feedTrimLength(maxLen: number, states: number): number {
  return Math.max(1, Math.floor(maxLen / Math.max(1, states)));
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** One row of a pack as a SKU state; undefined for a row of another shape. */
function packedState(row: unknown): SkuState | undefined {
  if (!Array.isArray(row) || row.length < 12) return undefined;
  const [sku, available, onHand, reserved, safetyStock, version, deleted, commitTs, locations, channels, cfg, incoming] = row as unknown[];
  if (typeof sku !== 'string' || sku === '' || typeof locations !== 'string') return undefined;
  if (!finite(available) || !finite(onHand) || !finite(reserved) || !finite(safetyStock) || !finite(version) || !finite(commitTs) || !finite(cfg)) return undefined;
  return {
    sku,
    available,
    onHand,
    reserved,
    safetyStock,
    version,
    deleted: deleted === 1,
    commitTs,
    locationsJson: locations,
    channels: channels === null ? null : channelsOf(channels),
    incoming: incoming === null ? null : incomingOf(incoming),
    ...(cfg > 0 ? { cfg } : {}),
  };
}

/**
 * The SKU states of one entry, single or pack, in the order written. Whatever does not decode (an
 * entry without a SKU, a pack that is not JSON, a row of another shape) is left out, never thrown.
 */
export function decodeFeedStates(fields: readonly string[]): SkuState[] {
  if (fields[0] !== 'pack') {
    const one = decodeFeedEntry(fields);
    return one ? [one] : [];
  }
  let rows: unknown;
  try {
    rows = JSON.parse(fields[1] ?? '');
  } catch {
    return [];
  }
  if (!Array.isArray(rows)) return [];
  const out: SkuState[] = [];
  for (const row of rows) {
    const state = packedState(row);
    if (state) out.push(state);
  }
  return out;
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
