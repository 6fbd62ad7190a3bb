/**
 * The fan-out hub: which connection wants which SKU, and the coalescing of feed entries into one
 * frame per connection per tick. Entries are coalesced once for the whole hub (newest state per
 * SKU) and fanned out at the tick, so a burst costs O(entries) on arrival and O(changed SKUs x
 * subscribers) per tick, however large the backlog. Every item string is serialised once per
 * state and channel kind, and connections that receive the same items share one encoded frame.
 *
 * Owns: subscription index, per-connection pending/held state, the tick, slow-consumer policing.
 * Must not: parse client frames (ws-server.ts) or read Redis (adapters/).
 */
import type { WebSocket } from 'ws';
import { isNewerState, type SkuState } from '../lib/contracts/feed.ts';
import { CLOSE_CODES, type Channel } from '../lib/contracts/protocol.ts';
import { rank } from '../lib/contracts/stock-view.ts';
import type { FeedEntry } from './adapters/feed.ts';
import { deltasFrame, itemJson, snapshotFrame, snapshotPartFrame } from './domain/protocol.ts';
import { encodeTextFrame } from './domain/ws-frame.ts';
import { chunkItems } from './limits.ts';
import type { GatewayMetrics } from './metrics.ts';

/** Order of SKU states: (version, deleted), as one number (the fold's rank). */
export function rankOf(s: { version: number; deleted: boolean }): number {
  return rank(s.version, s.deleted);
}

/**
 * The connection's TCP socket, as the HTTP server handed it over in its 'upgrade' event (the
 * request's `socket`; ws keeps the same object): pre-encoded frames are written to it directly.
 */
export interface FrameSocket {
  write(frame: Buffer): boolean;
  readonly destroyed: boolean;
}

export class Connection {
  readonly ws: WebSocket;
  readonly socket: FrameSocket;
  readonly channel: Channel;
  /** A storefront connection following one sales channel's figures (docs/channels.md). */
  readonly salesChannel: string | undefined;
  /** Per SKU, the channel figure last sent (sales-channel connections only): an unchanged figure is not sent again. */
  readonly sentFigure = new Map<string, number>();
  readonly skus = new Set<string>();
  all = false;
  /** Per SKU, the rank of the newest state sent on this connection: nothing older or equal is sent again. */
  readonly held = new Map<string, number>();
  /** Entries replayed for a resume, waiting for the next tick. */
  readonly replayPending = new Map<string, FeedEntry>();
  /** Entries for this connection in the tick being built. */
  tickItems: FeedEntry[] = [];
  invalidFrames = 0;
  closing = false;
  /**
   * Bytes of this connection's own recent replies (a split snapshot, a large replay) that may
   * still wait in its buffer without making it a slow consumer; cleared once the buffer is back
   * under the bound. A client that reads nothing is still closed: its backlog grows past the
   * bound plus this allowance.
   */
  replyAllowance = 0;
  /** Client frames are handled one after another, in arrival order. */
  queue: Promise<void> = Promise.resolve();

  constructor(ws: WebSocket, channel: Channel, socket: FrameSocket, salesChannel?: string) {
    this.ws = ws;
    this.socket = socket;
    this.channel = channel;
    this.salesChannel = salesChannel;
  }

  get full(): boolean {
    return this.channel !== 'storefront';
  }

  wants(sku: string): boolean {
    return this.all || this.skus.has(sku);
  }
}

export interface HubOptions {
  tickMs: number;
  maxBufferedBytes: number;
  metrics: GatewayMetrics;
  /** Current feed position (the cursor put in frames). */
  cursor: () => string;
  /** Snapshots and deltas are split into frames of at most about this many bytes (default 256 KiB). */
  maxReplyFrameBytes?: number;
}

/** Item JSON cached per entry: computed at most once per kind however many connections get it. */
const itemCache = new WeakMap<FeedEntry, { storefront?: string; full?: string; sales?: Map<string, string> }>();

export function entryItem(entry: FeedEntry, full: boolean, salesChannel?: string): string {
  let c = itemCache.get(entry);
  if (!c) itemCache.set(entry, (c = {}));
  if (salesChannel !== undefined) {
    c.sales ??= new Map();
    let s = c.sales.get(salesChannel);
    if (s === undefined) c.sales.set(salesChannel, (s = itemJson(entry.state, 'storefront', salesChannel)));
    return s;
  }
  if (full) return (c.full ??= itemJson(entry.state, 'wms'));
  return (c.storefront ??= itemJson(entry.state, 'storefront'));
}

/**
 * Whether a sales-channel connection is sent `state` (and records the figure sent): only when
 * the state carries the channel's figure and it differs from the figure last sent, so a change
 * at a location the channel is not served by (or one that leaves its figure as it was) never
 * reaches it. Other connections: always.
 */
export function takeFigure(conn: Connection, state: SkuState): boolean {
  if (conn.salesChannel === undefined) return true;
  const figure = state.channels?.[conn.salesChannel];
  if (figure === undefined || conn.sentFigure.get(state.sku) === figure) return false;
  conn.sentFigure.set(state.sku, figure);
  return true;
}

export class Hub {
  readonly connections = new Set<Connection>();
  private readonly bySku = new Map<string, Set<Connection>>();
  private readonly allSubscribers = new Set<Connection>();
  /** Newest state per SKU since the last tick. */
  private readonly changed = new Map<string, FeedEntry>();
  private readonly replayDirty = new Set<Connection>();
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
    this.replayDirty.delete(conn);
    conn.replayPending.clear();
    this.opts.metrics.connections.dec({ channel: conn.channel });
  }

  subscribe(conn: Connection, skus: string[] | '*'): string[] {
    // A connection already dropped (a slow consumer) is not indexed again: nothing would remove it.
    if (conn.closing || !this.connections.has(conn)) return [];
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
      conn.replayPending.delete(sku);
      conn.held.delete(sku);
      conn.sentFigure.delete(sku);
    }
  }

  /** Connections following `sku`: its subscribers and the all-SKU ones (alert-fanout.ts). */
  *subscribersOf(sku: string): Iterable<Connection> {
    yield* this.bySku.get(sku) ?? [];
    for (const conn of this.allSubscribers) if (!conn.skus.has(sku)) yield conn;
  }

  private unindex(conn: Connection, sku: string): void {
    const set = this.bySku.get(sku);
    set?.delete(conn);
    if (set && set.size === 0) this.bySku.delete(sku);
  }

  /**
   * New feed entries. Only the newest state per SKU is kept until the next tick: the work here is
   * per entry, never per (entry, connection), so a burst or a backlog costs O(entries).
   */
  publish(entries: FeedEntry[]): void {
    for (const entry of entries) {
      const prev = this.changed.get(entry.state.sku);
      if (isNewerState(prev?.state, entry.state)) this.changed.set(entry.state.sku, entry);
    }
    this.opts.metrics.feedEntries.inc(entries.length);
  }

  /** Queues entries for one connection only (a resume replay). */
  replay(conn: Connection, entries: FeedEntry[]): void {
    if (conn.closing) return;
    for (const e of entries) {
      if (!conn.wants(e.state.sku)) continue;
      const prev = conn.replayPending.get(e.state.sku);
      if (!prev || rankOf(e.state) > rankOf(prev.state)) conn.replayPending.set(e.state.sku, e);
    }
    if (conn.replayPending.size) this.replayDirty.add(conn);
  }

  private get maxReplyFrameBytes(): number {
    return this.opts.maxReplyFrameBytes ?? 256 * 1024;
  }

  /**
   * Sends a snapshot now (not on the tick); items not newer than what was sent are left out. A
   * large one goes out as several `snapshot` frames: the parts before the last carry
   * `"more":true`; the last carries `unknown` and the request's `id`.
   */
  sendSnapshot(conn: Connection, states: SkuState[], unknown: string[], id?: string | number): void {
    const items: string[] = [];
    for (const s of states) {
      const r = rankOf(s);
      if (!conn.wants(s.sku) || (conn.held.get(s.sku) ?? -1) >= r) continue;
      conn.held.set(s.sku, r);
      if (!takeFigure(conn, s)) continue;
      items.push(itemJson(s, conn.channel, conn.salesChannel));
    }
    const cursor = this.opts.cursor();
    const parts = chunkItems(items, this.maxReplyFrameBytes);
    const frames = parts.map((part, i) =>
      Buffer.from(i < parts.length - 1 ? snapshotPartFrame(cursor, part) : snapshotFrame(cursor, part, unknown, id)),
    );
    this.sendBatch(conn, frames, (f) => this.rawSend(conn, f));
  }

  /**
   * One frame per connection that has newer states than it was sent. Item JSON is built once per
   * state and kind; connections receiving the same entries share one encoded buffer.
   */
  tick(): void {
    if (this.changed.size === 0 && this.replayDirty.size === 0) return;
    const touched: Connection[] = [];
    const add = (conn: Connection, e: FeedEntry, r: number) => {
      if (conn.closing) return;
      const held = conn.held.get(e.state.sku);
      // A sales-channel connection also takes a state at the rank it holds: a reconfiguration
      // republishes SKUs at their version with new channel figures (takeFigure drops the same figure).
      if (held !== undefined && (held > r || (held === r && conn.salesChannel === undefined))) return;
      conn.held.set(e.state.sku, r);
      if (!takeFigure(conn, e.state)) return;
      if (conn.tickItems.length === 0) touched.push(conn);
      conn.tickItems.push(e);
    };
    for (const [sku, e] of this.changed) {
      const r = rankOf(e.state);
      const subs = this.bySku.get(sku);
      if (subs) for (const conn of subs) add(conn, e, r);
      for (const conn of this.allSubscribers) if (!conn.skus.has(sku)) add(conn, e, r);
    }
    for (const conn of this.replayDirty) {
      for (const e of conn.replayPending.values()) add(conn, e, rankOf(e.state));
      conn.replayPending.clear();
    }
    this.changed.clear();
    this.replayDirty.clear();

    const cursor = this.opts.cursor();
    const shared = new Map<string, Buffer[]>();
    let frames = 0;
    let items = 0;
    for (const conn of touched) {
      const entries = conn.tickItems;
      conn.tickItems = [];
      let key = conn.salesChannel !== undefined ? `C${conn.salesChannel}` : conn.full ? 'F' : 'S';
      let rts = Number.MAX_SAFE_INTEGER;
      for (const e of entries) {
        key += `|${e.id}`;
        if (e.rts < rts) rts = e.rts;
      }
      let encoded = shared.get(key);
      if (!encoded) {
        // A large backlog or replay goes out as several deltas frames of bounded size.
        const parts = chunkItems(entries.map((e) => entryItem(e, conn.full, conn.salesChannel)), this.maxReplyFrameBytes);
        encoded = parts.map((part) => encodeTextFrame(Buffer.from(deltasFrame(cursor, rts, part))));
        shared.set(key, encoded);
      }
      if (this.sendBatch(conn, encoded, (f) => this.writeEncoded(conn, f))) {
        frames += encoded.length;
        items += entries.length;
      }
    }
    this.opts.metrics.framesSent.inc(frames);
    this.opts.metrics.itemsSent.inc(items);
  }

  send(conn: Connection, text: string): boolean {
    return this.sendBatch(conn, [Buffer.from(text)], (f) => this.rawSend(conn, f));
  }

  /**
   * Sends the frames of one reply (a snapshot, a tick's deltas, an answer) unless the connection
   * is a slow consumer. Slow means: what still waits in its buffer from earlier writes exceeds
   * maxBufferedBytes plus the allowance of its own recent replies — the frames being written now
   * never count, so a fast client sent one large reply is not closed; a client that stops reading
   * is closed with 4008 once its backlog grows past the bound, instead of letting memory grow.
   */
  private sendBatch(conn: Connection, frames: Buffer[], write: (frame: Buffer) => boolean): boolean {
    if (conn.closing || conn.ws.readyState !== conn.ws.OPEN) return false;
    const backlog = conn.ws.bufferedAmount;
    const bound = this.opts.maxBufferedBytes;
    if (backlog <= bound) conn.replyAllowance = 0;
    else if (backlog > bound + conn.replyAllowance) {
      this.closeSlow(conn);
      return false;
    }
    let bytes = 0;
    for (const f of frames) {
      if (!write(f)) return false;
      bytes += f.length;
    }
    if (bytes > conn.replyAllowance) conn.replyAllowance = bytes;
    return true;
  }

  private rawSend(conn: Connection, data: Buffer): boolean {
    if (conn.ws.readyState !== conn.ws.OPEN) return false;
    conn.ws.send(data, { binary: false });
    return true;
  }

  /**
   * Writes an already-encoded frame straight to the connection's socket (the upgrade's socket,
   * which ws writes to as well). Safe to mix with ws.send: without compression the ws library
   * writes synchronously, so order is kept.
   */
  private writeEncoded(conn: Connection, frame: Buffer): boolean {
    const socket = conn.socket;
    if (socket.destroyed) return false;
    socket.write(frame);
    return true;
  }

  private closeSlow(conn: Connection): void {
    conn.closing = true;
    conn.replayPending.clear();
    this.opts.metrics.closed.inc({ code: String(CLOSE_CODES.slowConsumer.code) });
    conn.ws.close(CLOSE_CODES.slowConsumer.code, 'slow consumer');
    // No more fan-out work for it; the close frame waits behind its backlog (a client that is
    // slow but reading still gets 4008).
    this.remove(conn);
    // A client that reads nothing will not read the close frame either.
    setTimeout(() => conn.ws.terminate(), 2000).unref();
  }
}
