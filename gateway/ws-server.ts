/**
 * WebSocket endpoint `/v1/stream` (docs/websocket.md): authenticates the channel, parses client
 * frames, answers with snapshots/replays, and enforces limits. Nothing a client sends can throw
 * out of here: every handler is guarded, bad frames get an error frame, repeated abuse a close.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import type { FeedEntry, FeedReader } from './adapters/feed.ts';
import { readStates, type StockViews } from './adapters/stock-reader.ts';
import type { AuthResult } from './auth.ts';
import { CLOSE_CODES, isChannel, PROTOCOL_VERSION, type Channel } from '../lib/contracts/protocol.ts';
import { errorResponse } from '../lib/error-response.ts';
import {
  BadRequestError,
  NotFoundError,
  TokenExpiredError,
  TooManyConnectionsError,
  TooManyConnectionsFromAddressError,
  UnauthorizedError,
  UnknownChannelError,
  type FrameErrorCode,
  type PlatformError, UnknownSalesChannelError } from '../lib/errors.ts';
import { CHANNEL_ID } from '../lib/contracts/channels.ts';
import { rawHttpAnswer } from './raw-answer.ts';
import { errorFrame, parseClientFrame, type ClientFrame } from './domain/protocol.ts';
import { Connection, type Hub } from './hub.ts';
import { ConnectionCounter, Semaphore, TokenBucket } from './limits.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface WsDeps {
  server: Server;
  hub: Hub;
  feed: FeedReader;
  views: StockViews;
  authenticate: (channel: Channel, token: string | undefined) => Promise<AuthResult>;
  config: Config['gateway'];
  metrics: GatewayMetrics;
  logger: Logger;
  /**
   * The current states of the kits among `skus`, as feed entries (gateway/kit-fanout.ts): a resume
   * replays the feed, which holds no kit entries, so kits get theirs with the replay.
   */
  kitEntries?: (skus: readonly string[]) => Promise<FeedEntry[]>;
}

/** Seconds a client refused for want of connection slots waits before it tries again. */
const UPGRADE_RETRY_AFTER_S = 5;

function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  return url.searchParams.get('token') ?? undefined;
}

export function attachWebSocket(deps: WsDeps): WebSocketServer {
  const { hub, config, metrics } = deps;
  const { limits } = config;
  const log = deps.logger.child({ component: 'ws' });
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false });
  const counter = new ConnectionCounter(limits.maxConnections, limits.maxConnectionsPerAddress, new Set(limits.exemptAddresses));
  const resumeSlots = new Semaphore(limits.resumeConcurrency);
  const budgets = new WeakMap<Connection, { frames: TokenBucket; skus: TokenBucket }>();

  /** Answers an upgrade with the error's HTTP answer (lib/error-response.ts) and closes the socket. */
  function refuseUpgrade(socket: Duplex, err: PlatformError): void {
    metrics.upgradesRefused.inc({ reason: err.code });
    if (socket.destroyed || !socket.writable) return void socket.destroy();
    socket.end(rawHttpAnswer(errorResponse(err)));
  }

  // Crash safety: nothing on the upgrade path may throw out of this listener (an exception here
  // is outside any request handler and would end the process).
  deps.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      onUpgrade(req, socket, head);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'upgrade refused: the request could not be handled');
      refuseUpgrade(socket, new BadRequestError('the upgrade request could not be parsed'));
    }
  });

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      return refuseUpgrade(socket, new BadRequestError('the request target is not a valid URL'));
    }
    if (url.pathname !== '/v1/stream') return refuseUpgrade(socket, new NotFoundError('WebSocket endpoint is /v1/stream'));
    const address = req.socket.remoteAddress ?? 'unknown';
    const admitted = counter.admit(address);
    if (!admitted.ok) {
      if (admitted.reason === 'total') {
        return refuseUpgrade(socket, new TooManyConnectionsError(`this gateway holds its maximum of ${limits.maxConnections} connections; retry later or on another instance`, { retryAfterS: UPGRADE_RETRY_AFTER_S }));
      }
      return refuseUpgrade(socket, new TooManyConnectionsFromAddressError(`at most ${limits.maxConnectionsPerAddress} connections per address`, { retryAfterS: UPGRADE_RETRY_AFTER_S }));
    }
    // Released once, whenever the socket goes (refused by ws, closed, broken).
    let released = false;
    socket.once('close', () => {
      if (released) return;
      released = true;
      counter.release(address);
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      onConnection(ws, req, url).catch((err: unknown) => {
        log.error({ err: (err as Error).message }, 'connection setup failed');
        ws.close(CLOSE_CODES.internalError.code, 'internal error');
      });
    });
  }

  /** Sends the error's frame and closes with its catalog close code. */
  function refuse(ws: WebSocket, err: UnauthorizedError | UnknownChannelError | UnknownSalesChannelError | TokenExpiredError): void {
    const close = err.closeCode ?? CLOSE_CODES.internalError.code;
    metrics.closed.inc({ code: String(close) });
    ws.send(errorFrame(err.code, err.message));
    ws.close(close, err.code);
  }

  async function onConnection(ws: WebSocket, req: IncomingMessage, url: URL): Promise<void> {
    ws.on('error', () => undefined); // a broken socket must not crash the process
    const channelName = url.searchParams.get('channel') ?? 'storefront';
    if (!isChannel(channelName)) {
      refuse(ws, new UnknownChannelError(`unknown channel ${JSON.stringify(channelName)}: expected storefront, wms or erp`));
      return;
    }
    // A storefront connection may follow one sales channel's figures (public on purpose, like
    // the storefront itself: docs/channels.md).
    const salesChannel = url.searchParams.get('sales_channel') ?? undefined;
    if (salesChannel !== undefined && (channelName !== 'storefront' || !CHANNEL_ID.test(salesChannel) || !deps.views.channels?.config.channels.has(salesChannel))) {
      refuse(ws, new UnknownSalesChannelError(channelName !== 'storefront' ? 'sales_channel is for storefront connections (wms and erp items carry every channel\'s figure)' : `no sales channel ${JSON.stringify(salesChannel)}`));
      return;
    }
    const auth = await deps.authenticate(channelName, tokenOf(req, url));
    if (!auth.ok) {
      refuse(ws, new UnauthorizedError(auth.reason));
      return;
    }
    const conn = new Connection(ws, channelName, req.socket, salesChannel);
    budgets.set(conn, {
      frames: new TokenBucket(limits.framesPerSec, limits.frameBurst),
      skus: new TokenBucket(limits.subscribeSkusPerSec, limits.subscribeSkusBurst),
    });
    hub.add(conn);
    // Token expiry (docs/websocket.md): a wms/erp connection closes with 4005 when its token
    // expires, unless an `auth` frame brought a fresh one first.
    let expiry: NodeJS.Timeout | undefined;
    const armExpiry = (expiresAt: number | undefined) => {
      clearTimeout(expiry);
      if (expiresAt === undefined) return;
      expiry = setTimeout(() => {
        if (conn.closing) return;
        conn.closing = true;
        refuse(ws, new TokenExpiredError('the token of this connection expired; send {"op":"auth","token":...} before it does, or reconnect with a fresh token'));
      }, Math.min(Math.max(0, expiresAt - Date.now()), 2_147_483_647));
    };
    armExpiry(auth.principal?.expiresAt);
    reauth.set(conn, armExpiry);
    ws.on('close', (code) => {
      clearTimeout(expiry);
      hub.remove(conn);
      if (code === CLOSE_CODES.frameTooBig.code) metrics.closed.inc({ code: String(code) });
    });
    ws.on('message', (data, isBinary) => {
      if (conn.closing) return;
      // The frame rate is checked on arrival: frames over it are refused, never queued.
      if (!budgets.get(conn)!.frames.take(1)) {
        return invalid(conn, 'rate_limited', `at most ${limits.framesPerSec} frames per second (burst ${limits.frameBurst}); this frame was not handled`);
      }
      // Frames are handled one at a time per connection, in arrival order.
      conn.queue = conn.queue.then(() => onMessage(conn, data, isBinary)).catch((err: unknown) => {
        log.error({ err: (err as Error).message }, 'frame handling failed');
        hub.send(conn, errorFrame('internal_error', 'the gateway could not handle this frame'));
      });
    });
    hub.send(
      conn,
      JSON.stringify({
        type: 'welcome',
        protocol: PROTOCOL_VERSION,
        channel: channelName,
        ...(salesChannel ? { salesChannel } : {}),
        cursor: deps.feed.lastId,
        limits: {
          maxSubscriptions: config.maxSubscriptions,
          maxFrameBytes: config.maxFrameBytes,
          tickMs: config.tickMs,
          framesPerSec: limits.framesPerSec,
          subscribeSkusPerSec: limits.subscribeSkusPerSec,
        },
        ...(auth.principal?.expiresAt === undefined ? {} : { tokenExpiresAt: auth.principal.expiresAt }),
      }),
    );
  }

  /** Per connection: re-arms its token expiry after an `auth` frame. */
  const reauth = new WeakMap<Connection, (expiresAt: number | undefined) => void>();

  function invalid(conn: Connection, code: FrameErrorCode, message: string, id?: string | number): void {
    metrics.invalidFrames.inc({ code });
    conn.invalidFrames++;
    hub.send(conn, errorFrame(code, message, id));
    if (conn.invalidFrames >= config.maxInvalidFrames) {
      conn.closing = true;
      metrics.closed.inc({ code: String(CLOSE_CODES.tooManyInvalidFrames.code) });
      conn.ws.close(CLOSE_CODES.tooManyInvalidFrames.code, 'too many invalid frames');
    }
  }

  async function onMessage(conn: Connection, data: unknown, isBinary: boolean): Promise<void> {
    if (conn.closing) return;
    if (isBinary) return invalid(conn, 'invalid_frame', 'frames must be JSON text');
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    const parsed = parseClientFrame(text);
    if (!parsed.ok) return invalid(conn, parsed.error.code, parsed.error.message, parsed.error.id);
    await handle(conn, parsed.frame);
  }

  /** A dependency (the Redis views or feed) failed: the frame changed nothing and may be retried. */
  function unavailable(conn: Connection, err: unknown, id?: string | number): void {
    log.warn({ err: (err as Error).message }, 'frame not handled: stock views unavailable');
    hub.send(conn, errorFrame('unavailable', 'stock data is unavailable right now; nothing changed, retry the frame', id));
  }

  /** Subscription changes cost one token per SKU named (held ones too; "*" costs one). */
  function overSkuBudget(conn: Connection, skus: string[] | '*', id?: string | number): boolean {
    if (budgets.get(conn)!.skus.take(skus === '*' ? 1 : skus.length)) return false;
    invalid(conn, 'rate_limited', `subscription changes are limited to ${limits.subscribeSkusPerSec} SKUs per second (burst ${limits.subscribeSkusBurst}) per connection; nothing changed`, id);
    return true;
  }

  async function handle(conn: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.op) {
      case 'auth': {
        const r = await deps.authenticate(conn.channel, frame.token);
        const id = frame.id === undefined ? {} : { id: frame.id };
        if (!r.ok) {
          // The connection keeps its current token (and its expiry).
          hub.send(conn, errorFrame('unauthorized', r.reason, frame.id));
          return;
        }
        const expiresAt = r.principal?.expiresAt;
        reauth.get(conn)?.(expiresAt);
        hub.send(conn, JSON.stringify({ type: 'authenticated', channel: conn.channel, ...(expiresAt === undefined ? {} : { tokenExpiresAt: expiresAt }), ...id }));
        return;
      }
      case 'ping':
        hub.send(conn, JSON.stringify(frame.id === undefined ? { type: 'pong', ts: Date.now() } : { type: 'pong', ts: Date.now(), id: frame.id }));
        return;
      case 'unsubscribe':
        if (overSkuBudget(conn, frame.skus, frame.id)) return;
        hub.unsubscribe(conn, frame.skus);
        hub.send(conn, JSON.stringify({ type: 'unsubscribed', skus: frame.skus, ...(frame.id === undefined ? {} : { id: frame.id }) }));
        return;
      case 'subscribe': {
        if (overSkuBudget(conn, frame.skus, frame.id)) return;
        if (frame.skus === '*') {
          if (!conn.full) return invalid(conn, 'forbidden', 'subscribing to every SKU ("*") is for the wms and erp channels', frame.id);
          const wasAll = conn.all;
          hub.subscribe(conn, '*');
          let resumed: boolean | undefined;
          try {
            if (frame.since) resumed = await replay(conn, frame.since, undefined);
          } catch (err) {
            if (!wasAll) hub.unsubscribe(conn, '*');
            return unavailable(conn, err, frame.id);
          }
          // resumed false: the feed no longer holds (or the bound refuses) the changes since the
          // cursor; there is no snapshot of "*": re-bootstrap from stock.levels or HTTP.
          hub.send(conn, JSON.stringify({ type: 'subscribed', skus: '*', cursor: deps.feed.lastId, ...(resumed === undefined ? {} : { resumed }), ...(frame.id === undefined ? {} : { id: frame.id }) }));
          return;
        }
        const requested = [...new Set(frame.skus)];
        const fresh = requested.filter((s) => !conn.skus.has(s));
        if (conn.skus.size + fresh.length > config.maxSubscriptions) {
          return invalid(conn, 'too_many_skus', `a connection may subscribe to at most ${config.maxSubscriptions} SKUs (has ${conn.skus.size}, asked for ${fresh.length} more)`, frame.id);
        }
        const added = hub.subscribe(conn, requested);
        try {
          // Resume: replay what was missed when the feed still has it, else a fresh snapshot.
          if (frame.since && (await replay(conn, frame.since, requested))) {
            hub.send(conn, JSON.stringify({ type: 'subscribed', skus: requested, cursor: deps.feed.lastId, ...(frame.id === undefined ? {} : { id: frame.id }) }));
            return;
          }
          // SKUs this connection already holds a state of are not read again: it gets their changes.
          const toRead = requested.filter((s) => !conn.held.has(s));
          const { states, unknown } = await readStates(deps.views, toRead);
          hub.sendSnapshot(conn, states, unknown, frame.id);
        } catch (err) {
          // Nothing changed: the SKUs this frame added are not left subscribed.
          hub.unsubscribe(conn, added);
          unavailable(conn, err, frame.id);
        }
        return;
      }
    }
  }

  /**
   * Queues the feed entries after `since` for this connection; false when they cannot be had
   * (trimmed away, or more than the resume bound): the caller sends a snapshot instead. At most
   * `resumeConcurrency` reads run at once per process.
   */
  async function replay(conn: Connection, since: string, skus: string[] | undefined): Promise<boolean> {
    const release = await resumeSlots.acquire();
    let entries;
    try {
      entries = await deps.feed.readSince(since, limits.maxResumeEntries);
    } finally {
      release();
    }
    if (!entries) return false;
    const wanted = skus ? new Set(skus) : undefined;
    const kits = skus && deps.kitEntries ? await deps.kitEntries(skus) : [];
    hub.replay(conn, [...(wanted ? entries.filter((e) => wanted.has(e.state.sku)) : entries), ...kits]);
    return true;
  }

  return wss;
}
