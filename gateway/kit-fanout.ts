/**
 * Kits on the WebSocket feed (docs/kits.md): a kit has no view and no feed entries of its own, so
 * every gateway derives them. It keeps the newest state it has seen of every kit component (from
 * the feed, or read from the views the first time a kit needs a component it has not seen), and
 * when a component changes, recomputes each kit containing it that somebody follows and hands the
 * kit's state to the hub as a feed entry of the kit's SKU. The hub then coalesces, orders (by the
 * kit's version, lib/contracts/kits.ts kitVersion) and fans it out like any SKU's state.
 *
 * Owns: the component states, which kits to recompute. Must not: send frames (hub.ts) or decide
 * the kit rule (lib/contracts/kits.ts).
 */
import { isNewerState, toSkuState, type SkuState } from '../lib/contracts/feed.ts';
import { kitState, type ComponentState, type Kit, type KitSource } from '../lib/contracts/kits.ts';
import { errorMessage } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { readStates, type StockViews } from './adapters/stock-reader.ts';
import type { FeedEntry } from './adapters/feed.ts';

/** What the fan-out needs of the hub. */
export interface KitHub {
  publish(entries: FeedEntry[]): void;
  subscribersOf(sku: string): Iterable<unknown>;
}

function followed(hub: KitHub, sku: string): boolean {
  for (const _ of hub.subscribersOf(sku)) return true;
  return false;
}

/** The kit's state as a feed entry; `cfg` is the newest channel configuration among its components. */
export function kitEntry(kit: Kit, states: ReadonlyMap<string, SkuState>, id: string, rts: number): FeedEntry | undefined {
  const level = kitState(kit, states as ReadonlyMap<string, ComponentState>);
  if (!level) return undefined;
  let cfg = 0;
  for (const c of kit.components) cfg = Math.max(cfg, states.get(c.sku)?.cfg ?? 0);
  return { id: `${id}~${kit.sku}`, rts, state: { ...toSkuState(level), ...(cfg > 0 ? { cfg } : {}) } };
}

export class KitFanout {
  private readonly hub: KitHub;
  private readonly kits: KitSource;
  private readonly views: StockViews;
  private readonly log: Logger;
  /** Newest state seen per component SKU (of any kit). */
  private readonly last = new Map<string, SkuState>();

  constructor(deps: { hub: KitHub; kits: KitSource; views: StockViews; logger: Logger }) {
    this.hub = deps.hub;
    this.kits = deps.kits;
    this.views = deps.views;
    this.log = deps.logger.child({ component: 'kit-fanout' });
  }

  /** Feed entries as they arrive (after the hub got them): the kits they change, recomputed. */
  publish(entries: FeedEntry[]): void {
    const catalog = this.kits.config;
    if (catalog.kits.size === 0 || entries.length === 0) return;
    const dirty = new Set<string>();
    let last: FeedEntry | undefined;
    for (const e of entries) {
      const kits = catalog.byComponent.get(e.state.sku);
      if (!kits) continue;
      if (!isNewerState(this.last.get(e.state.sku), e.state)) continue;
      this.last.set(e.state.sku, e.state);
      last = e;
      for (const k of kits) dirty.add(k);
    }
    if (!last || dirty.size === 0) return;
    const todo = [...dirty].map((sku) => catalog.kits.get(sku)).filter((k): k is Kit => k !== undefined && followed(this.hub, k.sku));
    if (todo.length > 0) void this.emit(todo, last.id, last.rts);
  }

  /** The kit catalog changed: every followed kit again (its version base moved). */
  refresh(): Promise<void> {
    const todo = [...this.kits.config.kits.values()].filter((k) => followed(this.hub, k.sku));
    return todo.length > 0 ? this.emit(todo, `cfg-${this.kits.config.version}`, Date.now()) : Promise.resolve();
  }

  /** Kit entries for a resumed subscription (the feed holds no kit entries to replay); non-kits are left out. */
  async entriesFor(skus: readonly string[]): Promise<FeedEntry[]> {
    const catalog = this.kits.config;
    const kits = skus.map((s) => catalog.kits.get(s)).filter((k): k is Kit => k !== undefined);
    if (kits.length === 0) return [];
    await this.fill(kits);
    const out: FeedEntry[] = [];
    for (const k of kits) {
      const e = kitEntry(k, this.last, 'resume', Date.now());
      if (e) out.push(e);
    }
    return out;
  }

  private async emit(kits: Kit[], id: string, rts: number): Promise<void> {
    try {
      await this.fill(kits);
    } catch (err) {
      // The components not seen yet stay unknown (0) until their next change; a retry happens then.
      this.log.warn({ err: errorMessage(err), kits: kits.map((k) => k.sku) }, 'kit components could not be read from the views');
    }
    const out: FeedEntry[] = [];
    for (const k of kits) {
      const e = kitEntry(k, this.last, id, rts);
      if (e) out.push(e);
    }
    if (out.length > 0) this.hub.publish(out);
  }

  /** Reads the components not seen yet from the views; a state already newer here is kept. */
  private async fill(kits: Kit[]): Promise<void> {
    const missing = new Set<string>();
    for (const k of kits) for (const c of k.components) if (!this.last.has(c.sku)) missing.add(c.sku);
    if (missing.size === 0) return;
    // Components only: a component is never a kit (migration 0017), so this reads their own views.
    const { states } = await readStates({ readRows: (s) => this.views.readRows(s), ...(this.views.channels ? { channels: this.views.channels } : {}) }, [...missing]);
    for (const s of states) if (isNewerState(this.last.get(s.sku), s)) this.last.set(s.sku, s);
  }
}
