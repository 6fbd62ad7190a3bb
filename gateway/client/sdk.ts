/**
 * Typed client for the gateway's WebSocket stock feed (protocol v1, docs/websocket.md).
 *
 * Isomorphic: it only uses what browsers and Node 20 both provide (no Buffer, no process, no
 * Node `events`), so it can be bundled for the browser as is. On Node 20, which has no global
 * WebSocket, pass the `ws` package's class as `WebSocket`.
 *
 * What it adds on top of the raw protocol:
 *   - the subscription is remembered and re-sent after every reconnect, with `since` = the last
 *     cursor processed, so the server replays what was missed (or sends a fresh snapshot);
 *   - per SKU, items are applied only when newer in `(version, deleted)` order, so the
 *     application never sees a SKU go backwards, across reconnects, snapshots and replays;
 *   - reconnects with full-jitter exponential backoff on the transient close codes, stops (with
 *     an 'error' event) on the permanent ones.
 */

// ---------------------------------------------------------------------------------------------
// Protocol types and constants: shared with the gateway (lib/contracts/protocol.ts)

import { CHANNELS, CLOSE_CODES, shouldReconnect, type Channel, type ClientFrame, type StockItem, type SubscribeFrame, type WelcomeFrame } from '../../lib/contracts/protocol.ts';

export {
  CLOSE_CODES,
  shouldReconnect,
  type AuthFrame,
  type ClientFrame,
  type CloseCodeName,
  type DeltasFrame,
  type ErrorFrame,
  type LocationItem,
  type PingFrame,
  type PongFrame,
  type ServerErrorCode,
  type ServerFrame,
  type SnapshotFrame,
  type StockItem,
  type SubscribedFrame,
  type SubscribeFrame,
  type UnsubscribedFrame,
  type UnsubscribeFrame,
  type WelcomeFrame,
  type WelcomeLimits,
} from '../../lib/contracts/protocol.ts';

export type ChannelName = Channel;

export const CHANNEL_NAMES: readonly ChannelName[] = CHANNELS;

/** The 'error' event code for a permanent close. */
const PERMANENT_CLOSE_ERRORS: Readonly<Record<number, string>> = {
  [CLOSE_CODES.normal.code]: 'closed_by_server',
  [CLOSE_CODES.frameTooBig.code]: 'frame_too_big',
  [CLOSE_CODES.unauthorized.code]: 'unauthorized',
  [CLOSE_CODES.unknownChannel.code]: 'unknown_channel',
  [CLOSE_CODES.tooManyInvalidFrames.code]: 'abuse',
};

// ---------------------------------------------------------------------------------------------
// Pure helpers

/** The part of an item the version filter looks at. */
export interface VersionStamp {
  version: number;
  deleted?: boolean;
}

/**
 * Whether `incoming` supersedes `held` in `(version, deleted)` order: a higher version, or the
 * same version turning into a deletion. Anything is newer than nothing.
 */
export function isNewer(held: VersionStamp | undefined, incoming: VersionStamp): boolean {
  if (held === undefined) return true;
  if (incoming.version > held.version) return true;
  return incoming.version === held.version && incoming.deleted === true && held.deleted !== true;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { initialMs: 200, maxMs: 10_000, factor: 2 };

/**
 * Delay before reconnect attempt `attempt` (1 = the first retry), "full jitter":
 * `random() * min(maxMs, initialMs * factor^(attempt-1))`.
 */
export function backoffDelay(attempt: number, opts: Partial<BackoffOptions> = {}, random: () => number = Math.random): number {
  const { initialMs, maxMs, factor } = { ...DEFAULT_BACKOFF, ...opts };
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  const ceiling = Math.min(maxMs, initialMs * factor ** exponent);
  const r = Math.min(1, Math.max(0, random()));
  return r * (Number.isFinite(ceiling) ? ceiling : maxMs);
}

// ---------------------------------------------------------------------------------------------
// A tiny typed emitter (no Node 'events': this runs in browsers)

type Listener<A extends unknown[]> = (...args: A) => void;

export class TypedEmitter<E extends { [K in keyof E]: unknown[] }> {
  readonly #listeners: { [K in keyof E]?: Array<Listener<E[K]>> } = {};

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    (this.#listeners[event] ??= []).push(listener);
    return this;
  }

  once<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const wrapper: Listener<E[K]> = (...args) => {
      this.off(event, wrapper);
      listener(...args);
    };
    return this.on(event, wrapper);
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = this.#listeners[event];
    if (list) {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    }
    return this;
  }

  /**
   * Calls every listener. A listener that throws does not stop the others nor the client's own
   * processing; its error is rethrown asynchronously (reported like any uncaught error).
   */
  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.#listeners[event];
    if (!list || list.length === 0) return;
    for (const listener of [...list]) {
      try {
        listener(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The client

/** What the SDK needs of a WebSocket: the browser's and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // Event parameters are `any` so that both the DOM's and `ws`'s handler types are assignable.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

const WS_OPEN = 1;

export type ClientState = 'connecting' | 'open' | 'closed';

export interface ClientError {
  /** A server error frame's code, or why the client stopped (unauthorized, abuse, ...). */
  code: string;
  message: string;
  /** The id of the client frame an error frame answers. */
  id?: string;
  /** Set when the error is a permanent close. */
  closeCode?: number;
}

export interface SnapshotInfo {
  cursor: string;
  /** Subscribed SKUs the platform has no stock for (they stay subscribed). */
  unknown: string[];
}

export interface DeltasInfo {
  cursor: string;
  rts?: number;
}

export interface StockClientEvents {
  /** One item, after version filtering (snapshot and delta items alike). */
  item: [item: StockItem];
  /** A snapshot frame's items, after version filtering. */
  snapshot: [items: StockItem[], info: SnapshotInfo];
  /** A deltas frame's items, after version filtering (not emitted when none is left). */
  deltas: [items: StockItem[], info: DeltasInfo];
  state: [state: ClientState];
  error: [error: ClientError];
  welcome: [welcome: WelcomeFrame];
}

export interface StockClientOptions {
  /** e.g. `ws://127.0.0.1:18080/v1/stream`; existing query parameters are kept. */
  url: string;
  channel?: ChannelName;
  token?: string;
  /** Defaults to `globalThis.WebSocket`; pass the `ws` package's `WebSocket` on Node 20. */
  WebSocket?: WebSocketConstructor;
  backoff?: Partial<BackoffOptions>;
  /** Source of jitter in [0, 1); for tests. */
  random?: () => number;
}

type PendingRequest =
  | { op: 'subscribe'; skus: string[] | '*' }
  | { op: 'unsubscribe'; skus: string[] }
  | { op: 'ping'; sentAt: number; resolve: (ms: number) => void; reject: (err: Error) => void };

const DEFAULT_MAX_FRAME_BYTES = 65536;

/** Builds the connect URL: `url` + `channel` (+ `token`), keeping other query parameters. */
export function connectUrl(url: string, channel: ChannelName, token?: string): string {
  const hashAt = url.indexOf('#');
  const beforeHash = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const queryAt = beforeHash.indexOf('?');
  const path = queryAt >= 0 ? beforeHash.slice(0, queryAt) : beforeHash;
  const query = queryAt >= 0 ? beforeHash.slice(queryAt + 1) : '';
  const kept = query.split('&').filter((part) => {
    if (part === '') return false;
    const name = part.split('=')[0];
    return name !== 'channel' && name !== 'token';
  });
  kept.push(`channel=${encodeURIComponent(channel)}`);
  if (token !== undefined && token !== '') kept.push(`token=${encodeURIComponent(token)}`);
  return `${path}?${kept.join('&')}`;
}

function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function isStockItem(value: unknown): value is StockItem {
  return (
    isRecord(value) &&
    typeof value.sku === 'string' &&
    isFiniteNumber(value.available) &&
    isFiniteNumber(value.version) &&
    isFiniteNumber(value.commitTs) &&
    (value.deleted === undefined || typeof value.deleted === 'boolean')
  );
}

const encoder = new TextEncoder();

function byteLength(text: string): number {
  return encoder.encode(text).length;
}

export class StockClient extends TypedEmitter<StockClientEvents> {
  #url: string;
  readonly #baseUrl: string;
  readonly #channel: ChannelName;
  readonly #WebSocket: WebSocketConstructor;
  readonly #backoff: BackoffOptions;
  readonly #random: () => number;

  #ws: WebSocketLike | undefined;
  #state: ClientState = 'connecting';
  /** Whether #state was emitted yet (the initial 'connecting' is emitted on the first connect). */
  #announced = false;
  #stopped = false;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #welcome: WelcomeFrame | undefined;
  #welcomed = false;

  /** Remembered subscription: explicit SKUs, and/or every SKU. */
  readonly #skus = new Set<string>();
  #all = false;
  /**
   * SKUs whose state the client has as of `#cursor` (a snapshot, or `unknown`, listed them): only
   * these can be resumed with `since`; the others need a fresh snapshot.
   */
  readonly #synced = new Set<string>();
  #allSynced = false;

  readonly #items = new Map<string, StockItem>();
  #cursor: string | undefined;

  #nextId = 0;
  readonly #pending = new Map<string, PendingRequest>();

  constructor(options: StockClientOptions) {
    super();
    const channel = options.channel ?? 'storefront';
    if (!CHANNEL_NAMES.includes(channel)) throw new TypeError(`StockClient: unknown channel ${JSON.stringify(channel)}`);
    const Impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof Impl !== 'function') {
      throw new TypeError('StockClient: no WebSocket implementation; pass one as options.WebSocket (on Node 20: the `ws` package)');
    }
    this.#WebSocket = Impl;
    this.#baseUrl = options.url;
    this.#channel = channel;
    this.#url = connectUrl(options.url, channel, options.token);
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#random = options.random ?? Math.random;
    // Connect on the next microtask, so listeners attached right after construction see
    // 'connecting', and close() right after construction opens nothing.
    queueMicrotask(() => this.#connect());
  }

  /** The last cursor processed (from a snapshot or deltas frame); sent as `since` on resume. */
  get cursor(): string | undefined {
    return this.#cursor;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The last welcome frame received. */
  get welcome(): WelcomeFrame | undefined {
    return this.#welcome;
  }

  /** The latest item the client holds for `sku`. */
  get(sku: string): StockItem | undefined {
    return this.#items.get(sku);
  }

  /** Every item the client holds. */
  items(): StockItem[] {
    return [...this.#items.values()];
  }

  /** The remembered subscription. */
  subscriptions(): string[] | '*' {
    return this.#all ? '*' : [...this.#skus];
  }

  /**
   * Adds SKUs (or every SKU: `'*'`, wms/erp only) to the subscription. Remembered: sent now if
   * connected, and re-sent on every (re)connect.
   */
  subscribe(skus: string[] | '*'): void {
    if (this.#stopped) return;
    if (skus === '*') {
      if (this.#all) return;
      this.#all = true;
      this.#allSynced = false;
      if (this.#isReady()) this.#sendSubscribe('*', undefined);
      return;
    }
    const added = [...new Set(skus)].filter((sku) => typeof sku === 'string' && !this.#skus.has(sku));
    if (added.length === 0) return;
    for (const sku of added) this.#skus.add(sku);
    if (this.#isReady()) this.#sendSubscribe(added, undefined);
  }

  /** Removes SKUs from the subscription; their items are dropped and no longer emitted. */
  unsubscribe(skus: string[]): void {
    if (this.#stopped) return;
    const removed = [...new Set(skus)].filter((sku) => this.#skus.has(sku));
    for (const sku of removed) this.#forget(sku);
    if (removed.length > 0 && this.#isReady()) {
      for (const chunk of this.#chunks(removed, (part) => ({ op: 'unsubscribe', skus: part }))) {
        const id = this.#id();
        this.#pending.set(id, { op: 'unsubscribe', skus: chunk });
        this.#send({ op: 'unsubscribe', skus: chunk, id });
      }
    }
  }

  /** Round trip to the gateway in ms. Rejects when not connected or if the connection drops. */
  ping(): Promise<number> {
    if (!this.#isReady()) return Promise.reject(new Error('StockClient: not connected'));
    return new Promise<number>((resolve, reject) => {
      const id = this.#id();
      this.#pending.set(id, { op: 'ping', sentAt: now(), resolve, reject });
      this.#send({ op: 'ping', id });
    });
  }

  /**
   * A fresh token (wms/erp with JWTs): sent now as `{"op":"auth"}` when connected, so the
   * connection outlives the old token's expiry (`welcome.tokenExpiresAt`), and used for every
   * reconnect from now on. A refused token is reported as an `error` event (`unauthorized`).
   */
  authenticate(token: string): void {
    if (this.#stopped) return;
    this.#url = connectUrl(this.#baseUrl, this.#channel, token);
    if (this.#isReady()) this.#send({ op: 'auth', token, id: this.#id() });
  }

  /** Closes the connection (code 1000) for good: no reconnect. */
  close(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      this.#detach(ws);
      try {
        ws.close(CLOSE_CODES.normal.code, 'client closed');
      } catch {
        // already closing
      }
    }
    this.#dropPending('StockClient: closed');
    this.#setState('closed');
  }

  // -------------------------------------------------------------------------------------------
  // connection

  #connect(): void {
    if (this.#stopped) return;
    this.#reconnectTimer = undefined;
    this.#welcomed = false;
    this.#setState('connecting');
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(this.#url);
    } catch (err) {
      // A bad URL: nothing to retry.
      this.#stopped = true;
      this.emit('error', { code: 'connect_failed', message: err instanceof Error ? err.message : String(err) });
      this.#setState('closed');
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      // Wait for the welcome: an unauthorized connection gets an error frame and a close instead.
    };
    ws.onmessage = (event: { data?: unknown }) => {
      if (this.#ws === ws) this.#onMessage(event?.data);
    };
    ws.onerror = () => {
      // Always followed by a close event, which decides what to do.
    };
    ws.onclose = (event: { code?: unknown; reason?: unknown }) => {
      if (this.#ws !== ws) return;
      this.#detach(ws);
      this.#ws = undefined;
      const code = typeof event?.code === 'number' ? event.code : CLOSE_CODES.abnormal.code;
      const reason = typeof event?.reason === 'string' ? event.reason : '';
      this.#onClose(code, reason);
    };
  }

  #detach(ws: WebSocketLike): void {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    // Keep an error handler: `ws` throws on an 'error' event nobody listens to.
    ws.onerror = () => {};
  }

  #onClose(code: number, reason: string): void {
    this.#dropPending(`StockClient: connection closed (${code})`);
    if (this.#stopped) return;
    if (shouldReconnect(code)) {
      this.#attempt += 1;
      const delay = backoffDelay(this.#attempt, this.#backoff, this.#random);
      this.#setState('connecting');
      this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
      return;
    }
    this.#stopped = true;
    const errorCode = PERMANENT_CLOSE_ERRORS[code] ?? 'closed';
    this.emit('error', {
      code: errorCode,
      message: reason || `connection closed with code ${code}`,
      closeCode: code,
    });
    this.#setState('closed');
  }

  #setState(state: ClientState): void {
    if (this.#state === state && this.#announced) return;
    this.#announced = true;
    this.#state = state;
    this.emit('state', state);
  }

  #isReady(): boolean {
    return this.#ws !== undefined && this.#welcomed && this.#ws.readyState === WS_OPEN;
  }

  #dropPending(message: string): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const request of pending) if (request.op === 'ping') request.reject(new Error(message));
  }

  #id(): string {
    this.#nextId += 1;
    return String(this.#nextId);
  }

  #send(frame: ClientFrame): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WS_OPEN) return;
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      // The socket is going away; its close event drives what happens next.
    }
  }

  /** Splits a SKU list so that each frame stays under the server's maxFrameBytes. */
  #chunks(skus: string[], frame: (part: string[]) => ClientFrame): string[][] {
    const limit = (this.#welcome?.limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) - 64; // room for the id
    const fits = (part: string[]) => byteLength(JSON.stringify(frame(part))) <= limit;
    const out: string[][] = [];
    const split = (part: string[]): void => {
      if (part.length <= 1 || fits(part)) {
        out.push(part);
        return;
      }
      const mid = Math.ceil(part.length / 2);
      split(part.slice(0, mid));
      split(part.slice(mid));
    };
    split(skus);
    return out;
  }

  #sendSubscribe(skus: string[] | '*', since: string | undefined): void {
    const base = (part: string[] | '*'): SubscribeFrame => (since === undefined ? { op: 'subscribe', skus: part } : { op: 'subscribe', skus: part, since });
    const parts: Array<string[] | '*'> = skus === '*' ? ['*'] : this.#chunks(skus, base);
    for (const part of parts) {
      const id = this.#id();
      this.#pending.set(id, { op: 'subscribe', skus: part });
      this.#send({ ...base(part), id });
    }
  }

  /** On a new connection: the remembered subscription, resumed from the cursor where possible. */
  #resubscribe(): void {
    const since = this.#cursor;
    if (this.#all) {
      this.#sendSubscribe('*', this.#allSynced ? since : undefined);
      return;
    }
    if (this.#skus.size === 0) return;
    if (since === undefined) {
      this.#sendSubscribe([...this.#skus], undefined);
      return;
    }
    const resumable: string[] = [];
    const fresh: string[] = [];
    for (const sku of this.#skus) (this.#synced.has(sku) ? resumable : fresh).push(sku);
    // Resume first, then the SKUs whose snapshot never arrived (a replay would miss their base).
    if (resumable.length > 0) this.#sendSubscribe(resumable, since);
    if (fresh.length > 0) this.#sendSubscribe(fresh, undefined);
  }

  #forget(sku: string): void {
    this.#skus.delete(sku);
    this.#synced.delete(sku);
    this.#items.delete(sku);
  }

  // -------------------------------------------------------------------------------------------
  // frames

  #badFrame(message: string): void {
    this.emit('error', { code: 'bad_server_frame', message });
  }

  #onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      this.#badFrame('binary frame (the protocol uses JSON text frames)');
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      this.#badFrame(`not JSON: ${data.slice(0, 100)}`);
      return;
    }
    if (!isRecord(frame) || typeof frame.type !== 'string') {
      this.#badFrame('frame is not an object with a string "type"');
      return;
    }
    const id = typeof frame.id === 'string' ? frame.id : undefined;
    switch (frame.type) {
      case 'welcome':
        return this.#onWelcome(frame);
      case 'snapshot':
        return this.#onItems('snapshot', frame, id);
      case 'deltas':
        return this.#onItems('deltas', frame, id);
      case 'subscribed':
        return this.#onSubscribed(frame, id);
      case 'unsubscribed':
        if (id !== undefined) this.#pending.delete(id);
        return;
      case 'pong':
        return this.#onPong(id);
      case 'authenticated':
        return;
      case 'error':
        return this.#onErrorFrame(frame, id);
      default:
        // A frame type from a newer protocol: ignored.
        return;
    }
  }

  #onWelcome(frame: Record<string, unknown>): void {
    const limits = isRecord(frame.limits) ? frame.limits : {};
    const channel = frame.channel;
    if (typeof frame.cursor !== 'string' || typeof channel !== 'string' || !(CHANNEL_NAMES as readonly string[]).includes(channel)) {
      this.#badFrame('welcome without a cursor or channel');
      return;
    }
    const welcome: WelcomeFrame = {
      type: 'welcome',
      protocol: isFiniteNumber(frame.protocol) ? frame.protocol : 1,
      channel: channel as ChannelName,
      cursor: frame.cursor,
      limits: {
        maxSubscriptions: isFiniteNumber(limits.maxSubscriptions) ? limits.maxSubscriptions : 1000,
        maxFrameBytes: isFiniteNumber(limits.maxFrameBytes) ? limits.maxFrameBytes : DEFAULT_MAX_FRAME_BYTES,
        tickMs: isFiniteNumber(limits.tickMs) ? limits.tickMs : 25,
      },
    };
    this.#welcome = welcome;
    const first = !this.#welcomed;
    this.#welcomed = true;
    if (!first) {
      this.emit('welcome', welcome);
      return;
    }
    this.#attempt = 0;
    this.#resubscribe();
    this.#setState('open');
    this.emit('welcome', welcome);
  }

  #accepts(sku: string): boolean {
    return this.#all || this.#skus.has(sku);
  }

  #onItems(kind: 'snapshot' | 'deltas', frame: Record<string, unknown>, id: string | undefined): void {
    if (!Array.isArray(frame.items) || (frame.cursor !== undefined && typeof frame.cursor !== 'string')) {
      this.#badFrame(`${kind} frame without an items array or with a bad cursor`);
      return;
    }
    const unknown = kind === 'snapshot' && isStringArray(frame.unknown) ? frame.unknown : [];
    const applied: StockItem[] = [];
    let invalid = 0;
    for (const raw of frame.items as unknown[]) {
      if (!isStockItem(raw)) {
        invalid += 1;
        continue;
      }
      if (kind === 'snapshot' && this.#skus.has(raw.sku)) this.#synced.add(raw.sku);
      if (!this.#accepts(raw.sku)) continue;
      if (!isNewer(this.#items.get(raw.sku), raw)) continue;
      this.#items.set(raw.sku, raw);
      applied.push(raw);
    }
    if (kind === 'snapshot') {
      for (const sku of unknown) if (this.#skus.has(sku)) this.#synced.add(sku);
      const request = id !== undefined ? this.#pending.get(id) : undefined;
      if (request?.op === 'subscribe') {
        this.#pending.delete(id as string);
        if (request.skus !== '*') for (const sku of request.skus) if (this.#skus.has(sku)) this.#synced.add(sku);
      }
    } else if (id !== undefined && this.#pending.get(id)?.op === 'subscribe') {
      this.#pending.delete(id); // a replay answering a resume
    }
    const cursor = typeof frame.cursor === 'string' ? frame.cursor : this.#cursor;
    if (cursor !== undefined) this.#cursor = cursor;

    for (const item of applied) this.emit('item', item);
    if (kind === 'snapshot') {
      this.emit('snapshot', applied, { cursor: cursor ?? '', unknown });
    } else if (applied.length > 0) {
      const info: DeltasInfo = isFiniteNumber(frame.rts) ? { cursor: cursor ?? '', rts: frame.rts } : { cursor: cursor ?? '' };
      this.emit('deltas', applied, info);
    }
    if (invalid > 0) this.#badFrame(`${kind} frame: ${invalid} malformed item(s) skipped`);
  }

  #onSubscribed(frame: Record<string, unknown>, id: string | undefined): void {
    if (id !== undefined) this.#pending.delete(id);
    if (frame.skus === '*' && this.#all) {
      this.#allSynced = true;
      // No snapshot for '*': the stream's position is (at most) this connection's welcome
      // cursor, so resuming from it later can only replay more, never miss.
      if (this.#cursor === undefined && this.#welcome) this.#cursor = this.#welcome.cursor;
    }
  }

  #onPong(id: string | undefined): void {
    let key = id;
    if (key === undefined || this.#pending.get(key)?.op !== 'ping') {
      // A server that does not echo ids: answer the oldest ping.
      key = [...this.#pending.entries()].find(([, r]) => r.op === 'ping')?.[0];
    }
    if (key === undefined) return;
    const request = this.#pending.get(key);
    if (request?.op !== 'ping') return;
    this.#pending.delete(key);
    request.resolve(Math.max(0, now() - request.sentAt));
  }

  #onErrorFrame(frame: Record<string, unknown>, id: string | undefined): void {
    const code = typeof frame.code === 'string' ? frame.code : 'unknown_error';
    const message = typeof frame.message === 'string' ? frame.message : '';
    const request = id !== undefined ? this.#pending.get(id) : undefined;
    if (request && id !== undefined) {
      this.#pending.delete(id);
      if (request.op === 'subscribe') {
        // Rejected: the server holds none of these SKUs, so neither does the remembered set.
        if (request.skus === '*') {
          this.#all = false;
          this.#allSynced = false;
        } else {
          for (const sku of request.skus) this.#forget(sku);
        }
      } else if (request.op === 'ping') {
        request.reject(new Error(`StockClient: ping failed: ${code} ${message}`));
      }
    }
    this.emit('error', id === undefined ? { code, message } : { code, message, id });
  }
}
