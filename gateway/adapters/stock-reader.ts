/**
 * Reads SKU states from the processor's Redis views (for snapshots and HTTP reads). Read-only:
 * the views are written by stream-processors; their key layout and row format are contracts
 * (lib/contracts/redis-keys.ts, stock-view.ts), so the gateway needs nothing of the processor.
 */
import type { RedisClient } from '../../lib/redis.ts';
import { EMPTY_CHANNEL_CONFIG, withChannels, type ChannelSource } from '../../lib/contracts/channels.ts';
import { toSkuState, type SkuState } from '../../lib/contracts/feed.ts';
import { EMPTY_KIT_CATALOG, kitState, type ComponentState, type KitSource } from '../../lib/contracts/kits.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';
import { summarize, type SkuRows } from '../../lib/contracts/stock-view.ts';
import { readViewRows } from '../../lib/view-rows.ts';
import type { StockLevel } from '../../schemas/generated/avro-types.ts';

/** What the gateway reads of the views: a SKU's rows, for the SKUs that have a view. */
export interface StockViews {
  readRows(skus: string[]): Promise<Map<string, SkuRows>>;
  /** The sales-channel configuration the channel figures are computed with (none: no figures). */
  channels?: ChannelSource;
  /** The kit catalog: a kit's state is computed from its components' views (docs/kits.md; none: no kits). */
  kits?: KitSource;
}

export class StockViewReader implements StockViews {
  readonly keys: RedisKeys;
  readonly channels: ChannelSource | undefined;
  readonly kits: KitSource | undefined;
  private readonly redis: RedisClient;

  constructor(deps: { redis: RedisClient; prefix: string; channels?: ChannelSource; kits?: KitSource }) {
    this.redis = deps.redis;
    this.keys = redisKeys(deps.prefix);
    this.channels = deps.channels;
    this.kits = deps.kits;
  }

  /** One HGETALL per SKU, in one pipeline; SKUs without rows are left out. */
  async readRows(skus: string[]): Promise<Map<string, SkuRows>> {
    return readViewRows(this.redis, this.keys, skus);
  }
}

/**
 * Summaries of the SKUs that have a view; the others are listed as unknown. A kit's summary is
 * computed from its components' views, read in the same pipeline (lib/contracts/kits.ts kitState);
 * a kit none of whose components has a view is unknown.
 */
export async function readSummaries(views: StockViews, skus: string[]): Promise<{ summaries: StockLevel[]; unknown: string[] }> {
  const catalog = views.kits?.config ?? EMPTY_KIT_CATALOG;
  const toRead = new Set<string>();
  for (const sku of skus) {
    const kit = catalog.kits.get(sku);
    if (kit) for (const c of kit.components) toRead.add(c.sku);
    else toRead.add(sku);
  }
  const rows = await views.readRows([...toRead]);
  const channels = views.channels?.config ?? EMPTY_CHANNEL_CONFIG;
  const read = new Map<string, StockLevel>();
  for (const [sku, r] of rows) read.set(sku, withChannels(summarize(sku, r), r, channels));
  const summaries: StockLevel[] = [];
  const unknown: string[] = [];
  for (const sku of skus) {
    const kit = catalog.kits.get(sku);
    const s = kit ? kitState(kit, read as ReadonlyMap<string, ComponentState>) : read.get(sku);
    if (s) summaries.push(s);
    else unknown.push(sku);
  }
  return { summaries, unknown };
}

export async function readStates(views: StockViews, skus: string[]): Promise<{ states: SkuState[]; unknown: string[] }> {
  const { summaries, unknown } = await readSummaries(views, skus);
  // The WebSocket form: locations serialised once, to be forwarded as text.
  return { states: summaries.map(toSkuState), unknown };
}
