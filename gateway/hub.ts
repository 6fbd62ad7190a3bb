/**
 * The fan-out hub: which connection wants which SKU, and the per-connection coalescing of feed
 * entries into one frame per tick. Every item string is serialised once per state and channel
 * kind, and connections that receive the same items in a tick share one encoded frame buffer.
 *
 * Owns: subscription index, per-connection pending/held state, the tick, slow-consumer policing.
 * Must not: parse client frames (ws-server.ts) or read Redis (adapters/).
 */
import type { WebSocket } from 'ws';
import type { Channel } from '../lib/config.ts';
import type { FeedEntry } from './adapters/feed.ts';
import { CLOSE, deltasFrame, isNewer, itemJson, snapshotFrame, type SkuState } from './domain/protocol.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface Held {
  version: number;
  deleted: boolean;
}

export class Connection {
  readonly ws: WebSocket;
  readonly channel: Channel;
  readonly skus = new Set<string>();
  all = false;
  /** Per SKU, the newest state sent on this connection: nothing older or equal is ever sent again. */
  readonly held = new Map<string, Held>();
  readonly pending = new Map<string, FeedEntry>();
  invalidFrames = 0;
  closing = false;
  /** Client frames are handled one after another, in arrival order. */
  queue: Promise<void> = Promise.resolve();

  constructor(ws: WebSocket, channel: Channel) {
    this.ws = ws;
    this.channel = channel;
  }

  get full(): boolean {
    return this.channel !== 'storefront';
  }

  wants(sku: string): boolean {
    return this.all || this.skus.has(sku);
  }

  /** Keeps the newest pending state per SKU (coalescing), if it is newer than what was sent. */
  enqueue(entry: FeedEntry): void {
    const sku = entry.state.sku;
    if (!isNewer(this.held.get(sku), entry.state)) return;
    const prev = this.pending.get(sku);
    if (!prev || isNewer(prev.state, entry.state)) this.pending.set(sku, entry);
  }
}

export interface HubOptions {
  tickMs: number;
  maxBufferedBytes: number;
  metrics: GatewayMetrics;
  /** Current feed position (the cursor put in frames). */
  cursor: () => string;
}

/** Item JSON cached per entry: computed at most once per kind however many connections get it. */
const itemCache = new WeakMap<FeedEntry, { storefront?: string; full?: string }>();

export function entryItem(entry: FeedEntry, full: boolean): string {
  let c = itemCache.get(entry);
  if (!c) itemCache.set(entry, (c = {}));
  if (full) return (c.full ??= itemJson(entry.state, 'wms'));
  return (c.storefront ??= itemJson(entry.state, 'storefront'));
}

export class Hub {
  readonly connections = new Set<Connection>();
  private readonly bySku = new Map<string, Set<Connection>>();
  private readonly allSubscribers = new Set<Connection>();
  private readonly dirty = new Set<Connection>();
  private readonly opts: HubOptions;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: HubOptions) {
    this.opts = opts;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.opts.tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  add(conn: Connection): void {
    this.connections.add(conn);
    this.opts.metrics.connections.inc({ channel: conn.channel });
  }

  remove(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    for (const sku of conn.skus) this.unindex(conn, sku);
    this.allSubscribers.delete(conn);
    this.dirty.delete(conn);
    conn.pending.clear();
    this.opts.metrics.connections.dec({ channel: conn.channel });
  }

  subscribe(conn: Connection, skus: string[] | '*'): string[] {
    if (skus === '*') {
      conn.all = true;
      this.allSubscribers.add(conn);
      return [];
    }
    const added: string[] = [];
    for (const sku of skus) {
      if (conn.skus.has(sku)) continue;
      conn.skus.add(sku);
      added.push(sku);
      let set = this.bySku.get(sku);
      if (!set) this.bySku.set(sku, (set = new Set()));
      set.add(conn);
    }
    return added;
  }

  unsubscribe(conn: Connection, skus: string[] | '*'): void {
    const list = skus === '*' ? [...conn.skus] : skus;
    if (skus === '*') {
      conn.all = false;
      this.allSubscribers.delete(conn);
    }
    for (const sku of list) {
      if (!conn.skus.delete(sku)) continue;
      this.unindex(conn, sku);
      conn.pending.delete(sku);
      conn.held.delete(sku);
    }
  }

  private unindex(conn: Connection, sku: string): void {
    const set = this.bySku.get(sku);
    set?.delete(conn);
    if (set && set.size === 0) this.bySku.delete(sku);
  }

  /** New feed entries: queue them on every connection that wants their SKU. */
  publish(entries: FeedEntry[]): void {
    for (const entry of entries) {
      const sku = entry.state.sku;
      const subs = this.bySku.get(sku);
      if (subs) for (const conn of subs) this.queue(conn, entry);
      for (const conn of this.allSubscribers) if (!conn.skus.has(sku)) this.queue(conn, entry);
    }
    this.opts.metrics.feedEntries.inc(entries.length);
  }

  /** Queues entries for one connection only (a resume replay). */
  replay(conn: Connection, entries: FeedEntry[]): void {
    for (const e of entries) if (conn.wants(e.state.sku)) this.queue(conn, e);
  }

  private queue(conn: Connection, entry: FeedEntry): void {
    if (conn.closing) return;
    conn.enqueue(entry);
    if (conn.pending.size) this.dirty.add(conn);
  }

  /** Sends a snapshot now (not on the tick); items not newer than what was sent are left out. */
  sendSnapshot(conn: Connection, states: SkuState[], unknown: string[], id?: string | number): void {
    const items: string[] = [];
    for (const s of states) {
      if (!conn.wants(s.sku) || !isNewer(conn.held.get(s.sku), s)) continue;
      conn.held.set(s.sku, { version: s.version, deleted: s.deleted });
      const pending = conn.pending.get(s.sku);
      if (pending && !isNewer(s, pending.state)) conn.pending.delete(s.sku);
      items.push(itemJson(s, conn.channel));
    }
    this.send(conn, snapshotFrame(this.opts.cursor(), items, unknown, id));
  }

  /** One frame per connection with pending changes; identical frames are encoded once. */
  tick(): void {
    if (this.dirty.size === 0) return;
    const cursor = this.opts.cursor();
    const shared = new Map<string, Buffer>();
    const m = this.opts.metrics;
    let frames = 0;
    let items = 0;
    for (const conn of this.dirty) {
      if (conn.closing || conn.pending.size === 0) continue;
      const entries: FeedEntry[] = [];
      for (const e of conn.pending.values()) {
        if (isNewer(conn.held.get(e.state.sku), e.state)) entries.push(e);
      }
      conn.pending.clear();
      if (entries.length === 0) continue;
      let key = conn.full ? 'F' : 'S';
      let rts = Number.MAX_SAFE_INTEGER;
      for (const e of entries) {
        key += `|${e.id}`;
        if (e.rts < rts) rts = e.rts;
        conn.held.set(e.state.sku, { version: e.state.version, deleted: e.state.deleted });
      }
      let frame = shared.get(key);
      if (!frame) {
        frame = Buffer.from(deltasFrame(cursor, rts, entries.map((e) => entryItem(e, conn.full))));
        shared.set(key, frame);
      }
      if (this.sendBuffer(conn, frame)) {
        frames++;
        items += entries.length;
      }
    }
    this.dirty.clear();
    m.framesSent.inc(frames);
    m.itemsSent.inc(items);
  }

  send(conn: Connection, text: string): boolean {
    return this.sendBuffer(conn, Buffer.from(text));
  }

  /**
   * Sends unless the connection is a slow consumer: when more than maxBufferedBytes already wait
   * in its socket buffer, it is closed with 4008 instead of letting memory grow.
   */
  private sendBuffer(conn: Connection, data: Buffer): boolean {
    if (conn.closing || conn.ws.readyState !== conn.ws.OPEN) return false;
    if (conn.ws.bufferedAmount + data.length > this.opts.maxBufferedBytes) {
      this.closeSlow(conn);
      return false;
    }
    conn.ws.send(data, { binary: false });
    return true;
  }

  private closeSlow(conn: Connection): void {
    conn.closing = true;
    conn.pending.clear();
    this.opts.metrics.closed.inc({ code: String(CLOSE.slowConsumer.code) });
    conn.ws.close(CLOSE.slowConsumer.code, 'slow consumer');
    // A client that reads nothing will not read the close frame either.
    setTimeout(() => conn.ws.terminate(), 2000).unref();
  }
}
