/**
 * Sales channels (docs/channels.md): the configuration every process shares — which locations
 * serve a channel, its sourcing rule, its ring-fences — and the rule that turns a SKU's rows into
 * per-channel availability. Pure: no Postgres, no Redis. The Lua twin of `channelAvailability` is
 * stream-processors/lua/includes/channel-availability.lua (an integration test runs both on the
 * same cases); the write-back's location choice per sourcing rule is purchase/domain/allocate.ts.
 *
 * The rule, for a SKU and a channel c (avail(l) = max(0, on_hand - reserved - safety_stock) of a
 * live row at location l):
 *   pool(c)    = sum of avail(l) over c's locations
 *   fence(c)   = min(units, pool(c)) for a fence in units, floor(pool(c) * pct / 100) for a
 *                percentage, 0 for none (a per-SKU fence replaces the channel's default)
 *   pin(f, l)  = the part of fence(f) placed on location l: f's locations in f's priority order,
 *                each holding as much of what is left of the fence as it has (fencePins)
 *   available(c) = sum over c's locations l of max(0, avail(l) - sum over other channels f of pin(f, l))
 * So a channel never shows or sells units of a location it is not served by, nor the units
 * another channel's fence keeps there; the write-back applies the same pins when it allocates a
 * channel's purchase, so a fence holds whatever the other channels' sourcing rules pick.
 */
import type { StockLevel } from '../../schemas/generated/avro-types.ts';
import type { SkuRows } from './stock-view.ts';
import { availableOf } from './stock-view.ts';

export const CHANNEL_ID = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export const SOURCING_RULES = ['priority', 'most_stock', 'fewest_splits', 'single'] as const;
export type Sourcing = (typeof SOURCING_RULES)[number];

/** A ring-fence: units, or a percentage in basis points (1/100 of a percent), exactly one. */
export type Fence = { units: number } | { bp: number };

export interface SalesChannel {
  id: string;
  name: string;
  sourcing: Sourcing;
  pickupLocation: string | null;
  /** The channel's locations in priority order (lower priority value first, then by id). */
  locations: string[];
  /** The default fence of every SKU; null = none. */
  fence: Fence | null;
}

export interface ChannelConfig {
  /** sales_channel_config.version: orders configurations. 0 = never configured. */
  version: number;
  /** By id, in id order. */
  channels: Map<string, SalesChannel>;
  /** Per-SKU fences: sku -> channel -> fence (replaces the channel's default for that SKU). */
  skuFences: Map<string, Map<string, Fence>>;
}

export const EMPTY_CHANNEL_CONFIG: ChannelConfig = { version: 0, channels: new Map(), skuFences: new Map() };

export function fenceOf(config: ChannelConfig, channelId: string, sku: string): Fence | null {
  return config.skuFences.get(sku)?.get(channelId) ?? config.channels.get(channelId)?.fence ?? null;
}

/** Units a fence keeps out of other channels' reach, given the channel's pooled availability. */
export function fenceUnits(fence: Fence | null, pool: number): number {
  if (!fence) return 0;
  if ('units' in fence) return Math.min(fence.units, pool);
  return Math.floor((pool * fence.bp) / 10000);
}

/** What the availability rule needs per channel, resolved for one SKU, in channel id order. */
export type ChannelTerms = Array<{ id: string; locations: string[]; fence: Fence | null }>;

export function channelTerms(config: ChannelConfig, sku: string): ChannelTerms {
  const out: ChannelTerms = [];
  for (const c of config.channels.values()) out.push({ id: c.id, locations: c.locations, fence: fenceOf(config, c.id, sku) });
  return out;
}

/** Sellable units per live location of a SKU's rows. */
export function locationAvailability(rows: SkuRows): Map<string, number> {
  const out = new Map<string, number>();
  for (const [loc, r] of Object.entries(rows)) if (!r.deleted) out.set(loc, availableOf(r));
  return out;
}

/**
 * Where each fenced channel's fence sits: its fence units placed on its own locations in its
 * priority order, as many as each location has (the fenced channel's first locations hold its
 * fence). Per channel index, location -> units kept from every other channel.
 */
export function fencePins(avail: Map<string, number>, terms: ChannelTerms): Array<Map<string, number>> {
  return terms.map((t) => {
    const pins = new Map<string, number>();
    let left = fenceUnits(t.fence, t.locations.reduce((s, l) => s + (avail.get(l) ?? 0), 0));
    for (const l of t.locations) {
      if (left <= 0) break;
      const take = Math.min(left, avail.get(l) ?? 0);
      if (take > 0) pins.set(l, take);
      left -= take;
    }
    return pins;
  });
}

/** Units at each location that the other channels' fences keep from `channelId` (what the write-back may not take for it). */
export function pinsAgainst(avail: Map<string, number>, terms: ChannelTerms, channelId: string): Map<string, number> {
  const out = new Map<string, number>();
  fencePins(avail, terms).forEach((pins, i) => {
    if (terms[i]!.id === channelId) return;
    for (const [l, n] of pins) out.set(l, (out.get(l) ?? 0) + n);
  });
  return out;
}

/**
 * The availability of every channel for one SKU (the rule in this module's header). Linear in
 * channels x locations: every channel's pins are summed per location once, and a channel's
 * figure subtracts that sum minus its own pins (the Lua twin does the same; it runs per change).
 */
export function channelAvailability(avail: Map<string, number>, terms: ChannelTerms): Record<string, number> {
  const pins = fencePins(avail, terms);
  const total = new Map<string, number>();
  for (const p of pins) for (const [l, n] of p) total.set(l, (total.get(l) ?? 0) + n);
  const out: Record<string, number> = {};
  terms.forEach((c, ci) => {
    const mine = pins[ci]!;
    let a = 0;
    for (const l of c.locations) a += Math.max(0, (avail.get(l) ?? 0) - ((total.get(l) ?? 0) - (mine.get(l) ?? 0)));
    out[c.id] = a;
  });
  return out;
}

/**
 * The terms as the apply script's argument: JSON `{"v":<config version>,"c":[[id, kind, value,
 * [locations...]], ...]}` with kind 0 = fence in units, 1 = basis points, -1 = none.
 */
export function encodeChannelTerms(version: number, terms: ChannelTerms): string {
  const c = terms.map((t) => {
    const kind = t.fence === null ? -1 : 'units' in t.fence ? 0 : 1;
    const value = t.fence === null ? 0 : 'units' in t.fence ? t.fence.units : t.fence.bp;
    return [t.id, kind, value, t.locations];
  });
  return JSON.stringify({ v: version, c });
}

/** A channel's figures as the summary hash stores them: field `c:<id>`. */
export const CHANNEL_FIELD_PREFIX = 'c:';

/** Parses the `c:<id>` fields of a summary hash. */
export function channelsOfSummary(hash: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(hash)) if (k.startsWith(CHANNEL_FIELD_PREFIX)) out[k.slice(CHANNEL_FIELD_PREFIX.length)] = Number(v);
  return out;
}

/** Percent (as stored, e.g. 12.5) to basis points. */
export function pctToBp(pct: number): number {
  return Math.round(pct * 100);
}

/** Where a process's current configuration comes from (lib/channel-config.ts ChannelWatcher). */
export interface ChannelSource {
  readonly config: ChannelConfig;
}

/** The SKU's summary with its channel figures (left as it is when no channel is configured). */
export function withChannels(summary: StockLevel, rows: SkuRows, config: ChannelConfig): StockLevel {
  if (config.channels.size === 0) return summary;
  return { ...summary, channels: channelAvailability(locationAvailability(rows), channelTerms(config, summary.sku)) };
}
