/**
 * Unit tests of the client SDK against a scripted, in-process fake gateway (a `ws`
 * WebSocketServer on 127.0.0.1, port 0) that speaks protocol v1: no native stack needed.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  backoffDelay,
  CLOSE_CODES,
  connectUrl,
  isNewer,
  shouldReconnect,
  StockClient,
  type ClientError,
  type ClientState,
  type StockClientEvents,
  type StockClientOptions,
  type StockItem,
  type WelcomeFrame,
} from './sdk.ts';

// ---------------------------------------------------------------------------------------------
// the fake gateway

type Json = Record<string, unknown>;

class Waiters<T> {
  readonly items: T[] = [];
  #read = 0;
  #waiting: Array<(item: T) => void> = [];

  push(item: T): void {
    this.items.push(item);
    const waiter = this.#waiting.shift();
    if (waiter) {
      this.#read += 1;
      waiter(item);
    }
  }

  /** The next item not yet returned by next(). */
  next(timeoutMs = 2000): Promise<T> {
    if (this.#read < this.items.length) return Promise.resolve(this.items[this.#read++] as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting')), timeoutMs);
      this.#waiting.push((item) => {
        clearTimeout(timer);
        resolve(item);
      });
    });
  }
}

class FakeConnection {
  readonly frames = new Waiters<Json>();
  readonly url: URL;
  closedWith: number | undefined;
  readonly closed: Promise<number>;

  constructor(
    readonly ws: WebSocket,
    requestUrl: string,
  ) {
    this.url = new URL(requestUrl, 'ws://127.0.0.1');
    ws.on('message', (data: RawData) => this.frames.push(JSON.parse(String(data)) as Json));
    this.closed = new Promise((resolve) =>
      ws.on('close', (code: number) => {
        this.closedWith = code;
        resolve(code);
      }),
    );
  }

  send(frame: Json | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  welcome(cursor = '1-0'): void {
    this.send({ type: 'welcome', protocol: 1, channel: this.url.searchParams.get('channel') ?? 'storefront', cursor, limits: { maxSubscriptions: 1000, maxFrameBytes: 65536, tickMs: 25 } });
  }

  /** The next client frame (answering nothing). */
  next(): Promise<Json> {
    return this.frames.next();
  }

  close(code: number, reason = ''): void {
    this.ws.close(code, reason);
  }
}

class FakeGateway {
  readonly connections = new Waiters<FakeConnection>();
  /** Sends the welcome on connect unless set to false (e.g. to refuse a token). */
  autoWelcome = true;
  #wss: WebSocketServer | undefined;
  url = '';

  async start(): Promise<void> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this.#wss = wss;
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const address = wss.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected address');
    this.url = `ws://127.0.0.1:${address.port}/v1/stream`;
    wss.on('connection', (ws, request) => {
      const connection = new FakeConnection(ws, request.url ?? '/');
      if (this.autoWelcome) connection.welcome();
      this.connections.push(connection);
    });
  }

  /** The next connection not yet returned. */
  accept(): Promise<FakeConnection> {
    return this.connections.next();
  }

  async stop(): Promise<void> {
    const wss = this.#wss;
    if (!wss) return;
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// helpers

let gateway: FakeGateway;
const clients: StockClient[] = [];

beforeEach(async () => {
  gateway = new FakeGateway();
  await gateway.start();
});

afterEach(async () => {
  vi.useRealTimers();
  for (const client of clients.splice(0)) client.close();
  await gateway.stop();
});

function makeClient(options: Partial<StockClientOptions> = {}): StockClient {
  const client = new StockClient({
    url: gateway.url,
    WebSocket,
    backoff: { initialMs: 10, maxMs: 50 },
    random: () => 0.5,
    ...options,
  });
  clients.push(client);
  return client;
}

/** Records every event of a client. */
function record(client: StockClient) {
  const log = {
    items: [] as StockItem[],
    states: [] as ClientState[],
    errors: [] as ClientError[],
    snapshots: [] as StockItem[][],
    deltas: [] as StockItem[][],
  };
  client.on('item', (item) => log.items.push(item));
  client.on('state', (state) => log.states.push(state));
  client.on('error', (error) => log.errors.push(error));
  client.on('snapshot', (items) => log.snapshots.push(items));
  client.on('deltas', (items) => log.deltas.push(items));
  return log;
}

function nextEvent<K extends keyof StockClientEvents>(client: StockClient, event: K, timeoutMs = 2000): Promise<StockClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${String(event)}'`)), timeoutMs);
    client.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Resolves when the client emits `state` = `state` (or is already in it). */
function stateReached(client: StockClient, state: ClientState, timeoutMs = 2000): Promise<void> {
  if (client.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for state ${state}`)), timeoutMs);
    const listener = (s: ClientState) => {
      if (s !== state) return;
      clearTimeout(timer);
      client.off('state', listener);
      resolve();
    };
    client.on('state', listener);
  });
}

/**
 * For proving that a client does NOT connect again: fake timers (advancing with real time, so the
 * sockets and the helpers' timeouts work as usual) and a WebSocket that counts its constructions.
 * `settle()` then fires every timer the client may have set (its backoff is at most 50 ms here); a
 * reconnect creates its WebSocket synchronously in that timer, so `opened` shows it at once.
 */
function watchConnects() {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
  const probe = {
    opened: 0,
    WebSocket: class extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        probe.opened += 1;
      }
    },
    settle(): void {
      vi.advanceTimersByTime(10_000);
    },
  };
  return probe;
}

const item = (sku: string, version: number, available = version, extra: Partial<StockItem> = {}): StockItem => ({ sku, available, version, commitTs: 1_795_236_135_779 + version, ...extra });

/** Connects a client, subscribes `skus`, answers with a snapshot; returns the connection. */
async function subscribed(client: StockClient, skus: string[], items: StockItem[], cursor = '10-0'): Promise<FakeConnection> {
  const connection = await gateway.accept();
  await stateReached(client, 'open');
  client.subscribe(skus);
  const frame = await connection.next();
  expect(frame).toMatchObject({ op: 'subscribe', skus });
  const snapshot = nextEvent(client, 'snapshot');
  connection.send({ type: 'snapshot', cursor, items, unknown: [], id: frame.id });
  await snapshot;
  return connection;
}

/** Sends a deltas frame followed by a marker delta, and waits until the marker was processed. */
async function deltasThenSync(client: StockClient, connection: FakeConnection, items: StockItem[], cursor: string, markerSku: string, markerVersion: number): Promise<void> {
  const marker = new Promise<void>((resolve) => {
    const listener = (i: StockItem) => {
      if (i.sku === markerSku && i.version === markerVersion) {
        client.off('item', listener);
        resolve();
      }
    };
    client.on('item', listener);
  });
  connection.send({ type: 'deltas', cursor, rts: Date.now(), items });
  connection.send({ type: 'deltas', cursor, rts: Date.now(), items: [item(markerSku, markerVersion)] });
  await marker;
}

// ---------------------------------------------------------------------------------------------
// pure parts

describe('isNewer', () => {
  it('orders states by (version, deleted)', () => {
    expect(isNewer(undefined, { version: 1 })).toBe(true);
    expect(isNewer({ version: 5 }, { version: 6 })).toBe(true);
    expect(isNewer({ version: 5 }, { version: 5 })).toBe(false);
    expect(isNewer({ version: 5 }, { version: 4 })).toBe(false);
    expect(isNewer({ version: 5, deleted: false }, { version: 5, deleted: true })).toBe(true);
    expect(isNewer({ version: 5, deleted: true }, { version: 5, deleted: true })).toBe(false);
    expect(isNewer({ version: 5, deleted: true }, { version: 5, deleted: false })).toBe(false);
    expect(isNewer({ version: 5, deleted: true }, { version: 6, deleted: false })).toBe(true);
    expect(isNewer({ version: 5, deleted: true }, { version: 4, deleted: true })).toBe(false);
  });
});

describe('backoffDelay', () => {
  const opts = { initialMs: 200, maxMs: 10_000, factor: 2 };

  it('grows exponentially up to maxMs (random = 1 gives the ceiling)', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => backoffDelay(attempt, opts, () => 1));
    expect(ceilings).toEqual([200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    expect(backoffDelay(100, opts, () => 1)).toBe(10_000);
  });

  it('is full jitter: random() * ceiling, within [0, ceiling]', () => {
    expect(backoffDelay(1, opts, () => 0)).toBe(0);
    expect(backoffDelay(3, opts, () => 0.25)).toBe(200);
    expect(backoffDelay(10, opts, () => 0.5)).toBe(5000);
    const draws = [0.9, 0.1, 0.5, 0.999, 0.3];
    let i = 0;
    const random = () => draws[i++ % draws.length] as number;
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(opts.maxMs, opts.initialMs * 2 ** (attempt - 1));
      const delay = backoffDelay(attempt, opts, random);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });

  it('defaults to 200 ms doubling to 10 s, and honours factor', () => {
    expect(backoffDelay(1, {}, () => 1)).toBe(200);
    expect(backoffDelay(2, { factor: 3 }, () => 1)).toBe(600);
    expect(backoffDelay(40, {}, () => 1)).toBe(10_000);
  });
});

describe('CLOSE_CODES', () => {
  it('names every close code of docs/websocket.md, reconnecting on exactly the ones it says', () => {
    const md = fs.readFileSync(new URL('../../docs/websocket.md', import.meta.url), 'utf8');
    const table = [...md.matchAll(/^\| (\d{4}) \| [^|]+\| ([^|]+)\|/gm)].map((m) => ({ code: Number(m[1]), should: (m[2] as string).trim() }));
    const sdkLine = /The SDK reconnects on ([^.]*)/.exec(md)?.[1] ?? '';
    const reconnectCodes = [...sdkLine.matchAll(/\d{4}/g)].map((m) => Number(m[0])).sort();
    expect(table.length).toBeGreaterThanOrEqual(8);
    expect(reconnectCodes).toEqual([1001, 1006, 1011, 1012, 1013, 4005, 4008]);

    const documented = [...new Set([...table.map((r) => r.code), ...reconnectCodes])].sort();
    expect(Object.values(CLOSE_CODES).map((c) => c.code).sort()).toEqual(documented);
    for (const c of Object.values(CLOSE_CODES)) {
      expect(c.reconnect, `close ${c.code}`).toBe(reconnectCodes.includes(c.code));
      expect(shouldReconnect(c.code)).toBe(c.reconnect);
    }
    for (const row of table) expect(row.should.startsWith('reconnect'), `close ${row.code}: ${row.should}`).toBe(shouldReconnect(row.code));
    for (const code of [1002, 1008, 4999]) expect(shouldReconnect(code)).toBe(false);
  });
});

describe('connectUrl', () => {
  it('adds channel and an encoded token, keeping other query parameters', () => {
    expect(connectUrl('ws://h:1/v1/stream', 'storefront')).toBe('ws://h:1/v1/stream?channel=storefront');
    expect(connectUrl('ws://h:1/v1/stream?x=1', 'wms', 'a b&c')).toBe('ws://h:1/v1/stream?x=1&channel=wms&token=a%20b%26c');
    expect(connectUrl('ws://h:1/v1/stream?channel=erp&token=old&y=2#frag', 'wms', 't')).toBe('ws://h:1/v1/stream?y=2&channel=wms&token=t');
  });
});

// ---------------------------------------------------------------------------------------------
// against the fake gateway

describe('StockClient', () => {
  it('connects with channel and token, and reports connecting → open and the welcome', async () => {
    gateway.autoWelcome = true;
    const client = makeClient({ url: `${gateway.url}?tenant=acme`, channel: 'wms', token: 'dev-wms-key' });
    const log = record(client);
    const welcome = nextEvent(client, 'welcome');
    const connection = await gateway.accept();
    expect(connection.url.searchParams.get('channel')).toBe('wms');
    expect(connection.url.searchParams.get('token')).toBe('dev-wms-key');
    expect(connection.url.searchParams.get('tenant')).toBe('acme');
    const [frame] = (await welcome) as [WelcomeFrame];
    expect(frame).toMatchObject({ type: 'welcome', protocol: 1, channel: 'wms' });
    expect(log.states).toEqual(['connecting', 'open']);
    expect(client.cursor).toBeUndefined();
  });

  it('subscribe → snapshot: items emitted, held, and the cursor kept', async () => {
    const client = makeClient();
    const log = record(client);
    const connection = await gateway.accept();
    client.subscribe(['SKU-1', 'SKU-2', 'SKU-404']); // before the welcome: sent on open
    const frame = await connection.next();
    expect(frame).toMatchObject({ op: 'subscribe', skus: ['SKU-1', 'SKU-2', 'SKU-404'] });
    expect(frame.since).toBeUndefined();
    const snapshot = nextEvent(client, 'snapshot');
    connection.send({ type: 'snapshot', cursor: '10-0', items: [item('SKU-1', 3, 42), item('SKU-2', 7, 0)], unknown: ['SKU-404'], id: frame.id });
    const [items, info] = await snapshot;
    expect(items.map((i) => i.sku)).toEqual(['SKU-1', 'SKU-2']);
    expect(info).toEqual({ cursor: '10-0', unknown: ['SKU-404'] });
    expect(log.items.map((i) => [i.sku, i.available])).toEqual([
      ['SKU-1', 42],
      ['SKU-2', 0],
    ]);
    expect(client.get('SKU-1')).toMatchObject({ available: 42, version: 3 });
    expect(client.items()).toHaveLength(2);
    expect(client.cursor).toBe('10-0');
    expect(log.errors).toEqual([]);
  });

  it('applies deltas and drops older or equal versions', async () => {
    const client = makeClient();
    const connection = await subscribed(client, ['A', 'B'], [item('A', 5, 50), item('B', 5, 50)]);
    const log = record(client);
    const deltas = nextEvent(client, 'deltas');
    connection.send({ type: 'deltas', cursor: '11-0', rts: 123, items: [item('A', 6, 60)] });
    const [applied, info] = await deltas;
    expect(applied).toEqual([item('A', 6, 60)]);
    expect(info).toEqual({ cursor: '11-0', rts: 123 });
    expect(client.get('A')?.available).toBe(60);

    // older (5) and equal (6) after 6: dropped; B 4 < 5 dropped
    await deltasThenSync(client, connection, [item('A', 5, 1), item('A', 6, 2), item('B', 4, 3)], '12-0', 'B', 9);
    expect(client.get('A')).toEqual(item('A', 6, 60));
    expect(log.items.map((i) => `${i.sku}@${i.version}`)).toEqual(['A@6', 'B@9']);
    expect(client.cursor).toBe('12-0');
  });

  it('applies the (version, deleted) tie rule', async () => {
    const client = makeClient({ channel: 'wms', token: 'k' });
    const connection = await subscribed(client, ['A', 'M'], [item('A', 5, 10, { deleted: false })]);
    const log = record(client);
    // same version, now deleted: applied
    await deltasThenSync(client, connection, [item('A', 5, 0, { deleted: true })], '11-0', 'M', 1);
    expect(client.get('A')).toMatchObject({ version: 5, deleted: true, available: 0 });
    // same version not deleted, or deleted again: dropped
    await deltasThenSync(client, connection, [item('A', 5, 10, { deleted: false })], '12-0', 'M', 2);
    await deltasThenSync(client, connection, [item('A', 5, 0, { deleted: true })], '13-0', 'M', 3);
    expect(client.get('A')).toMatchObject({ version: 5, deleted: true });
    // a newer version after a delete: applied
    await deltasThenSync(client, connection, [item('A', 6, 4, { deleted: false })], '14-0', 'M', 4);
    expect(client.get('A')).toMatchObject({ version: 6, deleted: false, available: 4 });
    expect(log.items.filter((i) => i.sku === 'A').map((i) => `${i.version}${i.deleted ? 'd' : ''}`)).toEqual(['5d', '6']);
  });

  it('authenticate(): sends an auth frame now, and reconnects after 4005 with the newest token', async () => {
    gateway.autoWelcome = true;
    const client = makeClient({ channel: 'wms', token: 'old-token' });
    const first = await gateway.accept();
    await nextEvent(client, 'welcome');
    client.authenticate('fresh-token');
    expect(await first.next()).toMatchObject({ op: 'auth', token: 'fresh-token' });
    first.close(CLOSE_CODES.tokenExpired.code, 'token_expired');
    const second = await gateway.accept();
    expect(second.url.searchParams.get('token')).toBe('fresh-token');
    expect(second.url.searchParams.get('channel')).toBe('wms');
    client.close();
  });

  it('reconnects after close 4008 and resumes with since = last cursor and every remembered SKU', async () => {
    const client = makeClient();
    const log = record(client);
    const first = await subscribed(client, ['A', 'B'], [item('A', 5), item('B', 5)], '10-0');
    client.subscribe(['C']);
    const c = await first.next();
    expect(c).toMatchObject({ op: 'subscribe', skus: ['C'] });
    first.send({ type: 'snapshot', cursor: '11-0', items: [item('C', 2)], unknown: [], id: c.id });
    await deltasThenSync(client, first, [item('A', 8)], '12-0', 'B', 9);
    expect(client.cursor).toBe('12-0');

    first.close(CLOSE_CODES.slowConsumer.code, 'slow consumer');
    const second = await gateway.accept();
    const resume = await second.next();
    expect(resume.op).toBe('subscribe');
    expect(resume.since).toBe('12-0');
    expect([...(resume.skus as string[])].sort()).toEqual(['A', 'B', 'C']);
    expect(second.frames.items).toHaveLength(1); // one frame

    // the fresh snapshot carries an older state of A than the client saw: not applied
    const snapshot = nextEvent(client, 'snapshot');
    second.send({ type: 'snapshot', cursor: '20-0', items: [item('A', 7), item('B', 10), item('C', 2)], unknown: [], id: resume.id });
    const [applied] = await snapshot;
    expect(applied.map((i) => `${i.sku}@${i.version}`)).toEqual(['B@10']);
    expect(client.get('A')?.version).toBe(8);
    expect(client.cursor).toBe('20-0');
    expect(log.states).toEqual(['connecting', 'open', 'connecting', 'open']);
    expect(log.errors).toEqual([]);
  });

  it('reconnects after the connection drops without a close frame (1006)', async () => {
    const client = makeClient();
    const log = record(client);
    const first = await subscribed(client, ['A'], [item('A', 1)], '10-0');
    first.ws.terminate();
    const second = await gateway.accept();
    const resume = await second.next();
    expect(resume).toMatchObject({ op: 'subscribe', skus: ['A'], since: '10-0' });
    // replayed deltas converge
    await deltasThenSync(client, second, [item('A', 2)], '11-0', 'A', 3);
    expect(client.get('A')?.version).toBe(3);
    expect(log.states).toEqual(['connecting', 'open', 'connecting', 'open']);
  });

  it('keeps retrying while connections fail, then resumes', async () => {
    const client = makeClient();
    const first = await subscribed(client, ['A'], [item('A', 1)], '10-0');
    gateway.autoWelcome = false;
    first.close(CLOSE_CODES.goingAway.code);
    // two failed attempts (1011 before any welcome, then a dropped connection)
    (await gateway.accept()).close(CLOSE_CODES.internalError.code);
    (await gateway.accept()).ws.terminate();
    const third = await gateway.accept();
    third.welcome('30-0');
    expect(await third.next()).toMatchObject({ op: 'subscribe', skus: ['A'], since: '10-0' });
    await stateReached(client, 'open');
  });

  it('resumes only the SKUs it has a snapshot for; the others get a fresh subscribe', async () => {
    const client = makeClient();
    const first = await subscribed(client, ['A'], [item('A', 1)], '10-0');
    client.subscribe(['B']);
    expect(await first.next()).toMatchObject({ op: 'subscribe', skus: ['B'] }); // never answered
    first.close(CLOSE_CODES.goingAway.code);
    const second = await gateway.accept();
    const resume = await second.next();
    const fresh = await second.next();
    expect(resume).toMatchObject({ op: 'subscribe', skus: ['A'], since: '10-0' });
    expect(fresh).toMatchObject({ op: 'subscribe', skus: ['B'] });
    expect(fresh.since).toBeUndefined();
  });

  it.each([
    [CLOSE_CODES.unauthorized.code, 'unauthorized'],
    [CLOSE_CODES.unknownChannel.code, 'unknown_channel'],
    [CLOSE_CODES.tooManyInvalidFrames.code, 'abuse'],
    [CLOSE_CODES.frameTooBig.code, 'frame_too_big'],
    [CLOSE_CODES.normal.code, 'closed_by_server'],
  ])('does not reconnect after close %i and reports %s', async (code, errorCode) => {
    const connects = watchConnects();
    const client = makeClient({ WebSocket: connects.WebSocket });
    const log = record(client);
    const connection = await gateway.accept();
    await stateReached(client, 'open');
    const closed = stateReached(client, 'closed');
    connection.close(code, 'bye');
    await closed;
    expect(log.errors).toEqual([{ code: errorCode, message: 'bye', closeCode: code }]);
    connects.settle(); // many backoff periods (initialMs 10, maxMs 50)
    expect(connects.opened).toBe(1);
    expect(gateway.connections.items).toHaveLength(1);
    expect(client.state).toBe('closed');
  });

  it('stops on a refused token: the error frame and the close are both reported', async () => {
    gateway.autoWelcome = false;
    const connects = watchConnects();
    const client = makeClient({ channel: 'wms', token: 'bad', WebSocket: connects.WebSocket });
    const log = record(client);
    client.subscribe(['A']);
    const connection = await gateway.accept();
    const closed = stateReached(client, 'closed');
    connection.send({ type: 'error', code: 'unauthorized', message: 'bad token' });
    connection.close(CLOSE_CODES.unauthorized.code, 'unauthorized');
    await closed;
    expect(log.errors.map((e) => e.code)).toEqual(['unauthorized', 'unauthorized']);
    expect(log.errors[1]?.closeCode).toBe(4001);
    expect(log.states).toEqual(['connecting', 'closed']);
    connects.settle();
    expect(connects.opened).toBe(1);
    expect(gateway.connections.items).toHaveLength(1);
    expect(connection.frames.items).toEqual([]); // nothing sent before a welcome
  });

  it('unsubscribe sends the frame and stops item events for that SKU', async () => {
    const client = makeClient();
    const connection = await subscribed(client, ['A', 'B'], [item('A', 1), item('B', 1)]);
    const log = record(client);
    client.unsubscribe(['A', 'not-subscribed']);
    const frame = await connection.next();
    expect(frame).toMatchObject({ op: 'unsubscribe', skus: ['A'] });
    expect(client.get('A')).toBeUndefined();
    connection.send({ type: 'unsubscribed', skus: ['A'], id: frame.id });
    // a delta for A still in flight is not emitted
    await deltasThenSync(client, connection, [item('A', 2)], '11-0', 'B', 2);
    expect(log.items.map((i) => i.sku)).toEqual(['B']);
    expect(client.subscriptions()).toEqual(['B']);

    // and it is not resubscribed after a reconnect
    connection.close(CLOSE_CODES.goingAway.code);
    const second = await gateway.accept();
    expect(await second.next()).toMatchObject({ op: 'subscribe', skus: ['B'] });
  });

  it('forgets SKUs whose subscribe the server rejected', async () => {
    const client = makeClient();
    const log = record(client);
    const connection = await gateway.accept();
    await stateReached(client, 'open');
    client.subscribe(['A', 'B']);
    const frame = await connection.next();
    const error = nextEvent(client, 'error');
    connection.send({ type: 'error', code: 'too_many_skus', message: 'limit 1', id: frame.id });
    await error;
    expect(log.errors).toEqual([{ code: 'too_many_skus', message: 'limit 1', id: frame.id }]);
    expect(client.subscriptions()).toEqual([]);
    expect(client.state).toBe('open');
  });

  it('subscribes to every SKU with "*" and resumes it', async () => {
    const client = makeClient({ channel: 'erp', token: 'k' });
    const first = await gateway.accept();
    client.subscribe('*');
    const frame = await first.next();
    expect(frame).toMatchObject({ op: 'subscribe', skus: '*' });
    first.send({ type: 'subscribed', skus: '*', id: frame.id });
    const deltas = nextEvent(client, 'deltas');
    first.send({ type: 'deltas', cursor: '5-0', items: [item('ANY', 1, 1, { deleted: false, onHand: 1, reserved: 0, safetyStock: 0, locations: [] })] });
    await deltas;
    expect(client.get('ANY')?.onHand).toBe(1);
    first.close(CLOSE_CODES.slowConsumer.code);
    const second = await gateway.accept();
    expect(await second.next()).toMatchObject({ op: 'subscribe', skus: '*', since: '5-0' });
  });

  it('measures a ping round trip', async () => {
    const client = makeClient();
    const connection = await gateway.accept();
    await stateReached(client, 'open');
    const rtt = client.ping();
    const frame = await connection.next();
    expect(frame).toMatchObject({ op: 'ping' });
    connection.send({ type: 'pong', ts: Date.now(), id: frame.id });
    const ms = await rtt;
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(2000);
  });

  it('rejects a ping when not connected or when the connection drops', async () => {
    const client = makeClient();
    await expect(client.ping()).rejects.toThrow(/not connected/);
    const connection = await gateway.accept();
    await stateReached(client, 'open');
    const rtt = client.ping();
    await connection.next();
    connection.ws.terminate();
    await expect(rtt).rejects.toThrow(/closed/);
  });

  it('reports malformed server frames without throwing, ignores unknown types, and keeps going', async () => {
    const client = makeClient();
    const connection = await subscribed(client, ['A'], [item('A', 1)]);
    const log = record(client);
    connection.send('not json {');
    connection.send('[1,2]');
    connection.send('{"no":"type"}');
    connection.send({ type: 'deltas', cursor: '11-0', items: 'nope' });
    connection.send({ type: 'deltas', cursor: 42, items: [] });
    connection.ws.send(new Uint8Array([1, 2, 3])); // binary frame
    connection.send({ type: 'deltas', cursor: '12-0', items: [{ sku: 'A', version: 'x' }, item('A', 2)] });
    connection.send({ type: 'from-the-future', anything: true });
    await deltasThenSync(client, connection, [], '13-0', 'A', 3);
    expect(log.errors.every((e) => e.code === 'bad_server_frame')).toBe(true);
    expect(log.errors).toHaveLength(7);
    expect(log.items.map((i) => i.version)).toEqual([2, 3]);
    expect(client.state).toBe('open');
    expect(client.cursor).toBe('13-0');
  });

  it('close() closes with 1000, does not reconnect and reports no error', async () => {
    const connects = watchConnects();
    const client = makeClient({ WebSocket: connects.WebSocket });
    const log = record(client);
    const connection = await gateway.accept();
    await stateReached(client, 'open');
    client.close();
    expect(client.state).toBe('closed');
    expect(await connection.closed).toBe(1000);
    connects.settle();
    expect(connects.opened).toBe(1);
    expect(gateway.connections.items).toHaveLength(1);
    expect(log.errors).toEqual([]);
    expect(log.states).toEqual(['connecting', 'open', 'closed']);
  });

  it('close() right after construction opens nothing', async () => {
    const connects = watchConnects();
    const client = makeClient({ WebSocket: connects.WebSocket });
    client.close();
    // The client connects on a microtask queued at construction: it has run once ours has.
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    connects.settle();
    expect(connects.opened).toBe(0);
    expect(client.state).toBe('closed');
    expect(gateway.connections.items).toHaveLength(0);
  });
});
