/**
 * The gateway's crash safety and limits (issue 10, findings 1, 7, 8, 11, 12): hostile or careless
 * input on the upgrade path, in frames and in HTTP requests. The crash tests run the gateway in a
 * child process, so a crash is the child exiting, not this test runner.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { SECURITY_HEADERS } from '../gateway/http.ts';
import { encodeFeedPack } from '../lib/contracts/feed.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { testConfig, unique } from './helpers.ts';
import { rawRequest, spawnGateway, type GatewayProcess } from './gateway-process.ts';
import { waitUntil } from './processor-helpers.ts';

const prefix = unique('lim').replaceAll('-', '');

const UPGRADE_HEADERS = 'Host: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

async function alive(gw: GatewayProcess): Promise<void> {
  expect(gw.exit, `the gateway child died: ${gw.stderr().slice(-1500)}`).toBeUndefined();
  const r = await fetch(`${gw.url}/healthz`);
  expect(r.status).toBe(200);
}

describe('crash safety (child gateway)', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await spawnGateway({ REDIS_PREFIX: prefix });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('an upgrade whose request line has an unparsable URL gets 400, and the process lives (finding 1)', async () => {
    for (const target of ['http://[', '//', 'http://[::1', 'http://a b/v1/stream']) {
      const reply = await rawRequest(gw.port, `GET ${target} HTTP/1.1\r\n${UPGRADE_HEADERS}\r\n`, { untilText: '\r\n\r\n' });
      expect(reply, `upgrade to ${target}`).toMatch(/^HTTP\/1\.1 4\d\d /);
      await alive(gw);
    }
  });

  it('an upgrade with odd query strings or headers gets an answer (never a crash)', async () => {
    const odd = [
      `GET /v1/stream?channel=%ZZ%00&token=%E0%A4%A HTTP/1.1\r\n${UPGRADE_HEADERS}\r\n`,
      `GET /v1/stream HTTP/1.1\r\n${UPGRADE_HEADERS}Authorization: Bearer\r\nCookie: =;;%%\r\n\r\n`,
      `GET /v1/stream HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 99\r\n\r\n`,
      `GET /v1/stream HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
    ];
    for (const request of odd) {
      const reply = await rawRequest(gw.port, request, { untilText: '\r\n\r\n' });
      expect(reply).toMatch(/^HTTP\/1\.1 (101|4\d\d) /);
    }
    await alive(gw);
  });

  it('plain HTTP requests with unparsable targets or bytes get an answer below 500, and the process lives', async () => {
    for (const target of ['http://[', '//', '/v1/stock/%E0%A4%A', '/v1/purchases?%', '*', '/v1/orders/%00/cancel']) {
      for (const method of ['GET', 'POST']) {
        const reply = await rawRequest(gw.port, `${method} ${target} HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`, { untilText: '\r\n\r\n' });
        expect(reply, `${method} ${target}`).toMatch(/^HTTP\/1\.1 [234]\d\d /);
      }
    }
    const garbage = await rawRequest(gw.port, 'GET /\u0000 HTTP/1.1\r\nHost: gw\r\nX: a\u0001b\r\n\r\n', { untilText: '\r\n\r\n' });
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    await alive(gw);
  });
});

// ---------------------------------------------------------------------------------------------
// In-process gateways: "tight" (small caps and budgets, straight to Redis) and "roomy" (behind a
// TCP proxy to the real Redis, so the test can take Redis away from it and give it back).

const base = testConfig();
const logger = createLogger({ level: 'silent' });
const redis = createRedis(base.redis);
const views = new RedisViews({ redis, prefix });
const open: Client[] = [];

type Frame = Record<string, unknown> & { type: string };

class Client {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  /** The HTTP status when the upgrade was refused. */
  readonly refused: Promise<number>;
  private readonly waiters = new Set<() => void>();

  constructor(url: string, opts: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, opts);
    open.push(this);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.refused = new Promise((resolve) => {
      this.ws.once('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        req.destroy();
      });
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve(code)));
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const w of this.waiters) w();
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  waitFor(pred: (f: Frame) => boolean, what = 'a frame', timeoutMs = 20_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.frames.find(pred);
        if (!hit) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; last frames ${JSON.stringify(this.frames.slice(-3)).slice(0, 500)}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.terminate();
    await this.closed;
  }
}

function wsUrl(gw: GatewayService, query = ''): string {
  return `${gw.url.replace('http', 'ws')}/v1/stream${query}`;
}

async function connected(gw: GatewayService, query = '', opts: WebSocket.ClientOptions = {}): Promise<Client> {
  const c = new Client(wsUrl(gw, query), opts);
  await c.waitFor((f) => f.type === 'welcome', 'welcome');
  return c;
}

/** A TCP proxy to the real Redis that the test can cut and restore. */
class RedisProxy {
  port = 0;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(base.redis.port, base.redis.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
  }

  async cut(): Promise<void> {
    const closed = new Promise<void>((r) => this.server!.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

const FEED = () => views.keys.feed;
const bigLocations = JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ locationId: `L${i}`, onHand: 1, reserved: 0, safetyStock: 0, available: 1, version: 1 })));

async function addFeedEntries(skus: string[], version: number, locations = '[]'): Promise<void> {
  const p = redis.pipeline();
  for (const sku of skus) {
    p.xadd(FEED(), '*', 'sku', sku, 'available', 1, 'onHand', 1, 'reserved', 0, 'safetyStock', 0, 'version', version, 'deleted', 0, 'commitTs', Date.now(), 'locations', locations);
  }
  await p.exec();
}

const proxy = new RedisProxy();
let tight: GatewayService;
let roomy: GatewayService;

beforeAll(async () => {
  await proxy.start();
  const common = { ...process.env, REDIS_PREFIX: prefix, PURCHASE_EXPIRY_INTERVAL_MS: '0' };
  tight = await startGatewayService(
    loadConfig({
      ...common,
      GATEWAY_MAX_CONNECTIONS: '4',
      GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: '2',
      GATEWAY_LIMIT_EXEMPT_ADDRESSES: 'none',
      GATEWAY_WS_FRAMES_PER_SEC: '1',
      GATEWAY_WS_FRAME_BURST: '5',
      GATEWAY_WS_SUBSCRIBE_SKUS_PER_SEC: '1',
      GATEWAY_WS_SUBSCRIBE_SKUS_BURST: '20',
      GATEWAY_MAX_SUBSCRIPTIONS: '10',
      GATEWAY_MAX_INVALID_FRAMES: '3',
    }),
    logger,
    { port: 0, metricsDefaults: false },
  );
  roomy = await startGatewayService(
    loadConfig({
      ...common,
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      GATEWAY_MAX_SUBSCRIPTIONS: '200',
      GATEWAY_MAX_BUFFERED_BYTES: '65536',
      GATEWAY_MAX_REPLY_FRAME_BYTES: '16384',
      GATEWAY_MAX_RESUME_ENTRIES: '150',
    }),
    logger,
    { port: 0, metricsDefaults: false },
  );
});

afterAll(async () => {
  for (const c of open) c.ws.terminate();
  await tight?.stop();
  await roomy?.stop();
  await proxy.cut().catch(() => undefined);
  redis.disconnect();
});

describe('WebSocket limits (finding 7)', () => {
  it('caps connections per remote address (429) and in total (503) on the upgrade; a closed one frees its slot', async () => {
    const a1 = await connected(tight);
    const a2 = await connected(tight);
    const a3 = new Client(wsUrl(tight));
    expect(await a3.refused).toBe(429);
    const b1 = await connected(tight, '', { localAddress: '127.0.0.2' });
    const b2 = await connected(tight, '', { localAddress: '127.0.0.2' });
    const c1 = new Client(wsUrl(tight), { localAddress: '127.0.0.3' });
    expect(await c1.refused).toBe(503);
    await a1.close();
    await waitUntil(async () => tight.hub.connections.size === 3, 10_000, 'the closed connection to be released');
    const a4 = await connected(tight);
    a4.send({ op: 'ping', id: 'still-served' });
    await a4.waitFor((f) => f.type === 'pong' && f.id === 'still-served', 'pong');
    const refused = await tight.metrics.upgradesRefused.get();
    expect(refused.values.map((v) => v.labels.reason).sort()).toEqual(['too_many_connections', 'too_many_connections_from_address']);
    for (const c of [a2, b1, b2, a4]) await c.close();
    await waitUntil(async () => tight.hub.connections.size === 0, 10_000, 'all connections released');
  });

  it('limits the frame rate per connection: frames over it get rate_limited, persistent abuse closes 4003', async () => {
    const c = await connected(tight);
    for (let i = 0; i < 12; i++) c.send({ op: 'ping', id: `p${i}` });
    expect(await c.closed).toBe(4003);
    const pongs = c.frames.filter((f) => f.type === 'pong');
    const limited = c.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited');
    expect(pongs.length).toBeLessThanOrEqual(5); // at most the burst was handled
    expect(limited.length).toBe(3); // then GATEWAY_MAX_INVALID_FRAMES refusals and the close
  });

  it('counts re-subscribing held SKUs against the subscription budget', async () => {
    const skus = Array.from({ length: 10 }, (_, i) => unique(`HELD${i}`));
    const c = await connected(tight);
    c.send({ op: 'subscribe', skus, id: 's1' });
    await c.waitFor((f) => f.type === 'snapshot' && f.id === 's1', 'first snapshot');
    c.send({ op: 'subscribe', skus, id: 's2' }); // the same SKUs again: 20 of the burst of 20 spent
    await c.waitFor((f) => f.id === 's2', 'answer to s2');
    c.send({ op: 'subscribe', skus, id: 's3' });
    const third = await c.waitFor((f) => f.id === 's3', 'answer to s3');
    expect(third).toMatchObject({ type: 'error', code: 'rate_limited' });
    await c.close();
  });
});

describe('resume and cursors (findings 7 and 11)', () => {
  it('a resume further behind than GATEWAY_MAX_RESUME_ENTRIES gets a snapshot instead of a long read', async () => {
    const sku = unique('RES');
    const c = await connected(roomy);
    const since = String(c.frames[0]!.cursor);
    await addFeedEntries(Array.from({ length: 200 }, (_, i) => `${sku}-noise-${i}`), 1);
    c.send({ op: 'subscribe', skus: [sku], since, id: 'r1' });
    const answer = await c.waitFor((f) => f.id === 'r1', 'answer to r1');
    expect(answer).toMatchObject({ type: 'snapshot', unknown: [sku] });
    // Within the bound, a resume replays (subscribed + deltas).
    const near = String(answer.cursor);
    await addFeedEntries([sku], 5);
    c.send({ op: 'subscribe', skus: [sku], since: near, id: 'r2' });
    expect(await c.waitFor((f) => f.id === 'r2', 'answer to r2')).toMatchObject({ type: 'subscribed' });
    await c.close();
  });

  it('a resume counts the states of feed packs against GATEWAY_MAX_RESUME_ENTRIES, and replays a pack\'s state of its SKU', async () => {
    const sku = unique('PACK');
    const pack = (skus: string[], version: number) => encodeFeedPack(skus.map((s) => ({ sku: s, available: 3, onHand: 3, reserved: 0, safetyStock: 0, version, deleted: false, commitTs: Date.now(), locations: [], channels: null, incoming: null })));
    const c = await connected(roomy);
    const since = String(c.frames[0]!.cursor);
    // Two entries, 200 states: past the bound of 150 although only 2 entries.
    await redis.xadd(FEED(), '*', ...pack(Array.from({ length: 100 }, (_, i) => `${sku}-noise-a${i}`), 1));
    await redis.xadd(FEED(), '*', ...pack(Array.from({ length: 100 }, (_, i) => `${sku}-noise-b${i}`), 1));
    c.send({ op: 'subscribe', skus: [sku], since, id: 'p1' });
    expect(await c.waitFor((f) => f.id === 'p1', 'answer to p1')).toMatchObject({ type: 'snapshot', unknown: [sku] });
    // One pack of 100 within the bound: replayed, and the client gets its own SKU's state only.
    const near = String(c.frames.find((f) => f.id === 'p1')!.cursor);
    await redis.xadd(FEED(), '*', ...pack([...Array.from({ length: 99 }, (_, i) => `${sku}-other-${i}`), sku], 7));
    c.send({ op: 'subscribe', skus: [sku], since: near, id: 'p2' });
    expect(await c.waitFor((f) => f.id === 'p2', 'answer to p2')).toMatchObject({ type: 'subscribed' });
    const d = await c.waitFor((f) => f.type === 'deltas', 'the replayed state');
    expect(d.items).toEqual([expect.objectContaining({ sku, version: 7, available: 3 })]);
    await c.close();
  });

  it('a huge since cursor gets invalid_frame with the id, and the SKU is not left subscribed (finding 11)', async () => {
    const sku = unique('HUGE');
    const c = await connected(roomy);
    c.send({ op: 'subscribe', skus: [sku], since: '99999999999999999999999-0', id: 'h1' });
    expect(await c.waitFor((f) => f.id === 'h1', 'answer to h1')).toMatchObject({ type: 'error', code: 'invalid_frame' });
    c.send({ op: 'subscribe', skus: [sku], since: '18446744073709551616-0', id: 'h2' });
    expect(await c.waitFor((f) => f.id === 'h2', 'answer to h2')).toMatchObject({ type: 'error', code: 'invalid_frame' });
    expect([...roomy.hub.connections].some((conn) => conn.skus.has(sku))).toBe(false);
    // The largest id Redis accepts is a valid (if useless) cursor: nothing comes after it.
    c.send({ op: 'subscribe', skus: [sku], since: '18446744073709551615-18446744073709551615', id: 'h3' });
    expect(await c.waitFor((f) => f.id === 'h3', 'answer to h3')).toMatchObject({ type: 'subscribed' });
    expect(c.frames.some((f) => f.type === 'error' && f.code === 'internal_error')).toBe(false);
    await c.close();
  });

  it('SKU names with control characters are refused in frames and in HTTP paths', async () => {
    const c = await connected(roomy);
    c.send({ op: 'subscribe', skus: ['A\u0000B'], id: 'cc' });
    expect(await c.waitFor((f) => f.id === 'cc', 'answer to cc')).toMatchObject({ type: 'error', code: 'invalid_frame' });
    await c.close();
    for (const path of ['/v1/stock/A%00B', '/v1/stock/A%0D%0AB', '/v1/stock?skus=A%1BB']) {
      const r = await fetch(`${roomy.url}${path}`);
      expect(r.status, path).toBe(400);
      expect(await r.json()).toMatchObject({ error: 'invalid_sku' });
    }
    for (const path of ['/v1/tickets/A%00B/1', '/v1/orders/%00', '/v1/tickets/A%7FB/1/events']) {
      const r = await fetch(`${roomy.url}${path}`);
      expect(r.status, path).toBe(400);
      expect(await r.json()).toMatchObject({ error: 'bad_request' });
    }
    const post = await fetch(`${roomy.url}/v1/orders/%1B/cancel`, { method: 'POST' });
    expect(post.status).toBe(400);
  });
});

describe('large replies (finding 8)', () => {
  it('an idle, fast client resuming more than the slow-consumer bound gets it in several frames and stays connected', async () => {
    const p = unique('BIG');
    const skus = Array.from({ length: 100 }, (_, i) => `${p}-${i}`);
    const c = await connected(roomy, '?channel=wms&token=dev-wms-key');
    const since = String(c.frames[0]!.cursor);
    await addFeedEntries(skus, 1, bigLocations); // ~2.5 KB per item: ~250 KB, the bound is 64 KiB
    c.send({ op: 'subscribe', skus, since, id: 'big' });
    await waitUntil(async () => new Set(c.frames.filter((f) => f.type === 'deltas').flatMap((f) => (f.items as Array<{ sku: string }>).map((i) => i.sku))).size === skus.length, 20_000, 'every resumed SKU');
    expect(c.frames.filter((f) => f.type === 'deltas').length).toBeGreaterThan(1);
    c.send({ op: 'ping', id: 'after' });
    await c.waitFor((f) => f.type === 'pong' && f.id === 'after', 'pong after the large replay');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    await c.close();
  });
});

describe('HTTP limits and headers (findings 11 and 12)', () => {
  it('refuses a body over the limit while it streams: 413 before it is read whole', async () => {
    const head = (path: string, extra: string) => `POST ${path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nIdempotency-Key: k-${unique('b')}\r\n${extra}\r\n`;
    // Declared too large: answered before the body.
    const declared = await rawRequest(roomy.port, head('/v1/purchases', 'Content-Length: 20971520\r\n') + '{"a":', { untilText: 'body_too_large' });
    expect(declared).toMatch(/^HTTP\/1\.1 413 /);
    // Chunked: answered once past the limit, although the body never ends.
    const chunk = 'x'.repeat(100_000);
    const chunked = await rawRequest(roomy.port, head('/v1/purchases', 'Transfer-Encoding: chunked\r\n') + `${chunk.length.toString(16)}\r\n${chunk}\r\n`, { untilText: 'body_too_large' });
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    const adjust = await rawRequest(roomy.port, head('/v1/adjustments', 'Authorization: Bearer dev-wms-key\r\nTransfer-Encoding: chunked\r\n') + `${chunk.length.toString(16)}\r\n${chunk}\r\n`, { untilText: 'body_too_large' });
    expect(adjust).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('a client streaming 20 MiB after the 413 is cut off long before the end', async () => {
    const total = 20 * 1024 * 1024;
    const socket = net.connect(roomy.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let reply = '';
    socket.on('data', (d) => (reply += d.toString('latin1')));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    let gone = false;
    socket.once('close', () => (gone = true));
    socket.write(`POST /v1/purchases HTTP/1.1\r\nHost: gw\r\nIdempotency-Key: k-${unique('s')}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    let written = 0;
    while (!gone && written < total) {
      const ok = socket.write(framed);
      written += chunk.length;
      if (!ok) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
    }
    if (!gone) socket.end('0\r\n\r\n');
    await closed;
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(written).toBeLessThan(total);
  });

  it('security headers on the demo page and the API; /metrics only on its own listener', async () => {
    for (const path of ['/', '/v1/stock/none-such', '/openapi.json']) {
      const r = await fetch(`${roomy.url}${path}`);
      expect(r.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(r.headers.get('x-frame-options'), path).toBe('DENY');
      expect(r.headers.get('referrer-policy'), path).toBe('no-referrer');
    }
    // The purchase route writes them itself (gateway/purchase-http.ts), on every answer: its own
    // refusals, and the dispatcher's (a declared body over the server's limit).
    const answers = [
      await fetch(`${roomy.url}/v1/purchases`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }),
      await fetch(`${roomy.url}/v1/purchases`, { method: 'GET' }),
      await fetch(`${roomy.url}/v1/purchases`, { method: 'POST', body: '{', headers: { 'content-type': 'application/json', 'idempotency-key': unique('h') } }),
    ];
    expect(answers.map((r) => r.status)).toEqual([400, 405, 400]);
    const tooLarge = await rawRequest(roomy.port, `POST /v1/purchases HTTP/1.1\r\nHost: gw\r\nContent-Length: 20971520\r\nConnection: close\r\n\r\n{"a":`, { untilText: "body_too_large" });
    expect(tooLarge).toMatch(/^HTTP\/1\.1 413 /);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      for (const r of answers) expect(r.headers.get(name), `${r.status} ${name}`).toBe(value);
      expect(tooLarge.toLowerCase(), `413 ${name}`).toContain(`${name.toLowerCase()}: ${value.toLowerCase()}`);
    }
    const publicMetrics = await fetch(`${roomy.url}/metrics`);
    expect(publicMetrics.status).toBe(404);
    expect(roomy.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const metrics = await fetch(`${roomy.metricsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('invsync_gateway_upgrades_refused_total');
  });
});

describe('Redis down (findings 11 and 12)', () => {
  it('stock reads answer 503 with Retry-After, /readyz turns red, frames get unavailable; all recover when Redis is back', async () => {
    const sku = unique('DOWN');
    const c = await connected(roomy);
    await proxy.cut();
    await waitUntil(async () => (await fetch(`${roomy.url}/readyz`)).status === 503, 20_000, '/readyz to turn red');
    const ready = await fetch(`${roomy.url}/readyz`);
    expect(ready.headers.get('retry-after')).toBe('1');
    const one = await fetch(`${roomy.url}/v1/stock/${sku}`);
    expect(one.status).toBe(503);
    expect(one.headers.get('retry-after')).toBe('1');
    expect(await one.json()).toMatchObject({ error: 'unavailable' });
    const batch = await fetch(`${roomy.url}/v1/stock?skus=${sku},other`);
    expect(batch.status).toBe(503);
    c.send({ op: 'subscribe', skus: [sku], id: 'd1' });
    expect(await c.waitFor((f) => f.id === 'd1', 'answer to d1')).toMatchObject({ type: 'error', code: 'unavailable' });
    expect([...roomy.hub.connections].some((conn) => conn.skus.has(sku))).toBe(false);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);

    await proxy.start();
    await waitUntil(async () => (await fetch(`${roomy.url}/readyz`)).status === 200, 30_000, '/readyz to turn green again');
    const back = await fetch(`${roomy.url}/v1/stock/${sku}`);
    expect(back.status).toBe(404);
    c.send({ op: 'subscribe', skus: [sku], id: 'd2' });
    expect(await c.waitFor((f) => f.id === 'd2', 'answer to d2')).toMatchObject({ type: 'snapshot', unknown: [sku] });
    await c.close();
  });
});
