/**
 * WebSocket endpoint `/v1/stream` (docs/websocket.md): authenticates the channel, parses client
 * frames, answers with snapshots/replays, and enforces limits. Nothing a client sends can throw
 * out of here: every handler is guarded, bad frames get an error frame, repeated abuse a close.
 */
import type { IncomingMessage, Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import type { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import type { FeedReader } from './adapters/feed.ts';
import { readStates } from './adapters/stock-reader.ts';
import type { AuthResult } from './auth.ts';
import { CLOSE, errorFrame, isChannel, parseClientFrame, PROTOCOL_VERSION, type ClientFrame } from './domain/protocol.ts';
import { Connection, type Hub } from './hub.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface WsDeps {
  server: Server;
  hub: Hub;
  feed: FeedReader;
  views: RedisViews;
  authenticate: (channel: 'storefront' | 'wms' | 'erp', token: string | undefined) => Promise<AuthResult>;
  config: Config['gateway'];
  metrics: GatewayMetrics;
  logger: Logger;
}

function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  return url.searchParams.get('token') ?? undefined;
}

export function attachWebSocket(deps: WsDeps): WebSocketServer {
  const { hub, config, metrics } = deps;
  const log = deps.logger.child({ component: 'ws' });
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false });

  deps.server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (url.pathname !== '/v1/stream') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"not_found","message":"WebSocket endpoint is /v1/stream"}');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      onConnection(ws, req, url).catch((err: unknown) => {
        log.error({ err: (err as Error).message }, 'connection setup failed');
        ws.close(CLOSE.internal.code, 'internal error');
      });
    });
  });

  function refuse(ws: WebSocket, close: { code: number }, code: string, message: string): void {
    metrics.closed.inc({ code: String(close.code) });
    ws.send(errorFrame(code, message));
    ws.close(close.code, code);
  }

  async function onConnection(ws: WebSocket, req: IncomingMessage, url: URL): Promise<void> {
    ws.on('error', () => undefined); // a broken socket must not crash the process
    const channelName = url.searchParams.get('channel') ?? 'storefront';
    if (!isChannel(channelName)) {
      refuse(ws, CLOSE.unknownChannel, 'unknown_channel', `unknown channel ${JSON.stringify(channelName)}: expected storefront, wms or erp`);
      return;
    }
    const auth = await deps.authenticate(channelName, tokenOf(req, url));
    if (!auth.ok) {
      refuse(ws, CLOSE.unauthorized, 'unauthorized', auth.reason);
      return;
    }
    const conn = new Connection(ws, channelName);
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
        refuse(ws, CLOSE.tokenExpired, 'token_expired', 'the token of this connection expired; send {"op":"auth","token":...} before it does, or reconnect with a fresh token');
      }, Math.min(Math.max(0, expiresAt - Date.now()), 2_147_483_647));
    };
    armExpiry(auth.principal?.expiresAt);
    reauth.set(conn, armExpiry);
    ws.on('close', (code) => {
      clearTimeout(expiry);
      hub.remove(conn);
      if (code === CLOSE.tooBig.code) metrics.closed.inc({ code: String(code) });
    });
    ws.on('message', (data, isBinary) => {
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
        cursor: deps.feed.lastId,
        limits: { maxSubscriptions: config.maxSubscriptions, maxFrameBytes: config.maxFrameBytes, tickMs: config.tickMs },
        ...(auth.principal?.expiresAt === undefined ? {} : { tokenExpiresAt: auth.principal.expiresAt }),
      }),
    );
  }

  /** Per connection: re-arms its token expiry after an `auth` frame. */
  const reauth = new WeakMap<Connection, (expiresAt: number | undefined) => void>();

  function invalid(conn: Connection, code: string, message: string, id?: string | number): void {
    metrics.invalidFrames.inc({ code });
    conn.invalidFrames++;
    hub.send(conn, errorFrame(code, message, id));
    if (conn.invalidFrames >= config.maxInvalidFrames) {
      conn.closing = true;
      metrics.closed.inc({ code: String(CLOSE.abuse.code) });
      conn.ws.close(CLOSE.abuse.code, 'too many invalid frames');
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
        hub.unsubscribe(conn, frame.skus);
        hub.send(conn, JSON.stringify({ type: 'unsubscribed', skus: frame.skus, ...(frame.id === undefined ? {} : { id: frame.id }) }));
        return;
      case 'subscribe': {
        if (frame.skus === '*') {
          if (!conn.full) return invalid(conn, 'forbidden', 'subscribing to every SKU ("*") is for the wms and erp channels', frame.id);
          hub.subscribe(conn, '*');
          if (frame.since) await replay(conn, frame.since, undefined);
          hub.send(conn, JSON.stringify({ type: 'subscribed', skus: '*', cursor: deps.feed.lastId, ...(frame.id === undefined ? {} : { id: frame.id }) }));
          return;
        }
        const requested = [...new Set(frame.skus)];
        const fresh = requested.filter((s) => !conn.skus.has(s));
        if (conn.skus.size + fresh.length > config.maxSubscriptions) {
          return invalid(conn, 'too_many_skus', `a connection may subscribe to at most ${config.maxSubscriptions} SKUs (has ${conn.skus.size}, asked for ${fresh.length} more)`, frame.id);
        }
        hub.subscribe(conn, requested);
        // Resume: replay what was missed when the feed still has it, else a fresh snapshot.
        if (frame.since && (await replay(conn, frame.since, requested))) {
          hub.send(conn, JSON.stringify({ type: 'subscribed', skus: requested, cursor: deps.feed.lastId, ...(frame.id === undefined ? {} : { id: frame.id }) }));
          return;
        }
        const { states, unknown } = await readStates(deps.views, requested);
        hub.sendSnapshot(conn, states, unknown, frame.id);
        return;
      }
    }
  }

  async function replay(conn: Connection, since: string, skus: string[] | undefined): Promise<boolean> {
    const entries = await deps.feed.readSince(since);
    if (!entries) return false;
    const wanted = skus ? new Set(skus) : undefined;
    hub.replay(conn, wanted ? entries.filter((e) => wanted.has(e.state.sku)) : entries);
    return true;
  }

  return wss;
}
