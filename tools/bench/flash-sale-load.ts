/**
 * Load generator of the flash-sale benchmark (tools/bench/flash-sale.ts), run as its own process so that
 * the server under test and the client do not share an event loop.
 *
 * It speaks HTTP/1.1 itself over `net` sockets (fetch costs far more CPU per request than the
 * servers under test): N keep-alive connections, each with one request in flight at a time, until
 * --attempts requests have been answered or --max-seconds have passed. Every attempt is
 * `POST /v1/purchases` for qty 1 of one SKU, with a customer drawn at random from a pool and a
 * fresh Idempotency-Key. Responses are parsed minimally: status line, Content-Length (or chunked),
 * and from the small JSON body only `"orderId"` (201) or `"error"` (4xx/5xx).
 *
 * A request whose connection fails before its response arrives is sent again, same key and body,
 * on a new connection (safe: the key makes it idempotent); its latency counts from the first send.
 * Connections are opened (in batches) and primed with one answered GET --prime-path before the
 * clock starts, so the figures exclude TCP setup and accept-queue waits.
 *
 * Recorded: counts per status (and per `error` code), latency histograms (0.1 ms bins) for all
 * attempts, for 201s and for 409 sold_out, a per-second timeline, the first sold-out and the last
 * 201, and every order id a 201 returned with its receipt time. Output: one JSON line on stdout
 * (`{"type":"summary",...}`); progress on stderr. Times in the summary are ms since `startedAt`
 * (epoch ms) unless named otherwise.
 *
 * Usage: node --import tsx tools/bench/flash-sale-load.ts --port P --sku S [--host 127.0.0.1]
 *          [--clients 2000] [--attempts 100000] [--customers 100000] [--max-seconds 120]
 *          [--connect-batch 250] [--prime-path /healthz] [--api-key KEY (purchase:act-for: Authorization + X-Customer-Id)]
 *          [--channel ID (every purchase names this sales channel: the key needs the grant sales:ID)]
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

export interface LoadOptions {
  host: string;
  port: number;
  sku: string;
  clients: number;
  attempts: number;
  customers: number;
  maxSeconds: number;
  connectBatch: number;
  /** GET before the clock starts, once per connection. */
  primePath: string;
  /**
   * A storefront-backend credential (scope purchase:act-for): sent as `Authorization: Bearer`
   * with the customer in `X-Customer-Id` (docs/security.md#credentials-who-may-do-what). The body names the
   * customer too, for the database-only baseline, which has no credentials.
   */
  apiKey: string | undefined;
  /** The sales channel every purchase names in its body (`channel`, docs/channels.md); undefined: the pooled figure. */
  channel: string | undefined;
}

/** Latency summary in ms (0.1 ms resolution); nulls when there was no sample. */
export interface LatencyMs {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

export interface LoadSummary {
  type: 'summary';
  sku: string;
  clients: number;
  connected: number;
  connectFailures: number;
  /** Epoch ms when the first requests went out. */
  startedAt: number;
  durationMs: number;
  issued: number;
  /** Attempts that got a response. */
  completed: number;
  attemptsPerS: number;
  /** Per status, and per status and error code (`409 sold_out`). */
  counts: Record<string, number>;
  accepted: number;
  soldOut: number;
  /** Responses other than 201 and 409 sold_out. */
  other: number;
  /** Requests sent again after their connection failed. */
  resent: number;
  /** Attempts given up (connection failures after retries, or unanswered at the time limit). */
  failed: number;
  timedOut: boolean;
  latencyMs: { all: LatencyMs; accepted: LatencyMs; soldOut: LatencyMs };
  firstSoldOutMs: number | null;
  lastAcceptedMs: number | null;
  /** From the last 201 to the end: every answer in it is a refusal. */
  afterSellOut: { fromMs: number; durationMs: number; soldOut: number; soldOutPerS: number | null };
  /** Per second since the start: [accepted, soldOut, other]. */
  timeline: Array<[number, number, number]>;
  /** The 10 slowest attempts: [sent ms since startedAt, latency ms, status, connection index, tries]. */
  slowest: Array<[number, number, number, number, number]>;
  /** [orderId, receipt ms since startedAt] of every 201. */
  orders: Array<[string, number]>;
  cpuS: number;
}

// ---------------------------------------------------------------------------------------------
// statistics

const BIN_MS = 0.1;
const MAX_BINS = 600_000; // 60 s

class Histogram {
  private bins = new Uint32Array(MAX_BINS + 1);
  count = 0;
  max = 0;
  add(ms: number): void {
    const b = Math.min(MAX_BINS, Math.max(0, Math.round(ms / BIN_MS)));
    this.bins[b] = this.bins[b]! + 1;
    this.count++;
    if (ms > this.max) this.max = ms;
  }
  private percentile(p: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i]!;
      if (seen >= rank) return +(i * BIN_MS).toFixed(1);
    }
    return MAX_BINS * BIN_MS;
  }
  summary(): LatencyMs {
    return { count: this.count, p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), p999: this.percentile(99.9), max: this.count ? +this.max.toFixed(1) : null };
  }
}

// ---------------------------------------------------------------------------------------------
// the client

const HEADER_END = Buffer.from('\r\n\r\n');
const ORDER_ID = Buffer.from('"orderId":"');
const ERROR = Buffer.from('"error":"');

interface Attempt {
  payload: string;
  sentAt: number;
  tries: number;
}

/** A response's framing: where it ends, or that more bytes are needed (null). */
function frame(buf: Buffer): { status: number; bodyStart: number; bodyEnd: number; end: number; close: boolean } | null | 'bad' {
  const he = buf.indexOf(HEADER_END);
  if (he < 0) return null;
  const head = buf.toString('latin1', 0, he);
  const status = Number(head.slice(9, 12));
  if (!head.startsWith('HTTP/1.') || !Number.isInteger(status)) return 'bad';
  const close = /\r\nconnection:\s*close/i.test(head);
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const bodyStart = he + 4;
  if (cl) {
    const end = bodyStart + Number(cl[1]);
    return buf.length < end ? null : { status, bodyStart, bodyEnd: end, end, close };
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    // Chunked: walk the chunk headers; the body is only searched for markers, so the chunk
    // framing bytes may stay inside [bodyStart, bodyEnd).
    let at = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at, 'latin1');
      if (lineEnd < 0) return null;
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (!Number.isFinite(size)) return 'bad';
      if (size === 0) {
        const end = buf.indexOf(HEADER_END, lineEnd);
        return end < 0 ? null : { status, bodyStart, bodyEnd: lineEnd, end: end + 4, close };
      }
      at = lineEnd + 2 + size + 2;
      if (buf.length < at) return null;
    }
  }
  // No length (204/304, or a close-delimited body the servers under test never send).
  return { status, bodyStart, bodyEnd: bodyStart, end: bodyStart, close };
}

function stringAfter(buf: Buffer, needle: Buffer, from: number, to: number): string | undefined {
  const i = buf.indexOf(needle, from);
  if (i < 0 || i >= to) return undefined;
  const start = i + needle.length;
  const end = buf.indexOf(0x22, start); // closing quote
  return end < 0 || end > to ? undefined : buf.toString('latin1', start, end);
}

export async function runLoad(o: LoadOptions, log: (line: string) => void = () => undefined): Promise<LoadSummary> {
  const cpu0 = process.cpuUsage();
  const tag = randomBytes(6).toString('hex');
  const hostHeader = `${o.host}:${o.port}`;
  const all = new Histogram();
  const acceptedH = new Histogram();
  const soldOutH = new Histogram();
  const counts: Record<string, number> = {};
  const orders: Array<[string, number]> = [];
  const slowest: Array<[number, number, number, number, number]> = [];
  const noteSlow = (sentAt: number, ms: number, status: number, conn: number, tries: number) => {
    if (slowest.length === 10 && ms <= slowest[9]![1]) return;
    slowest.push([+(sentAt - t0).toFixed(1), +ms.toFixed(1), status, conn, tries]);
    slowest.sort((a, b) => b[1] - a[1]);
    if (slowest.length > 10) slowest.pop();
  };
  const timeline: Array<[number, number, number]> = [];
  let issued = 0;
  let completed = 0;
  let accepted = 0;
  let soldOut = 0;
  let other = 0;
  let resent = 0;
  let failed = 0;
  let firstSoldOut: number | null = null;
  let lastAccepted: number | null = null;
  /** Sold-out answers since the latest 201: at the end, those after the last one. */
  let soldOutSinceAccepted = 0;
  let t0 = 0;
  let started = false;
  let stopping = false;
  let timedOut = false;

  const channelField = o.channel === undefined ? '' : `,"channel":${JSON.stringify(o.channel)}`;
  const request = (n: number): string => {
    const customer = `c-${Math.floor(Math.random() * o.customers)}`;
    const body = `{"customerId":"${customer}","items":[{"sku":${JSON.stringify(o.sku)},"qty":1}]${channelField}}`;
    const auth = o.apiKey ? `Authorization: Bearer ${o.apiKey}\r\nX-Customer-Id: ${customer}\r\n` : '';
    return (
      `POST /v1/purchases HTTP/1.1\r\nHost: ${hostHeader}\r\nContent-Type: application/json\r\n${auth}` +
      `Idempotency-Key: fs-${tag}-${n}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    );
  };

  const bump = (key: string) => void (counts[key] = (counts[key] ?? 0) + 1);
  const tick = (now: number, k: 0 | 1 | 2) => {
    const s = Math.floor((now - t0) / 1000);
    while (timeline.length <= s) timeline.push([0, 0, 0]);
    timeline[s]![k]++;
  };

  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let openConns = 0;
  const checkDone = () => {
    if (openConns === 0 || (stopping && completed + failed >= issued)) finish();
  };

  class Conn {
    readonly index: number;
    constructor(index: number) {
      this.index = index;
    }
    socket!: net.Socket;
    buf: Buffer | null = null;
    inflight: Attempt | null = null;
    /** Set while the connection's priming request (before the clock starts) is out. */
    priming: (() => void) | null = null;
    alive = false;

    connect(): Promise<boolean> {
      return new Promise((resolve) => {
        const s = net.connect({ host: o.host, port: o.port, noDelay: true });
        this.socket = s;
        this.buf = null;
        let settled = false;
        s.once('connect', () => {
          settled = true;
          this.alive = true;
          resolve(true);
        });
        s.on('data', (chunk: Buffer) => this.onData(chunk));
        s.on('error', () => undefined); // 'close' follows
        s.on('close', () => {
          this.alive = false;
          if (!settled) {
            settled = true;
            resolve(false);
            return;
          }
          if (!started) {
            // Lost before the clock started: dropped from the run.
            const p = this.priming;
            this.priming = null;
            p?.();
            return;
          }
          this.onClose();
        });
      });
    }

    next(): void {
      if (stopping || issued >= o.attempts) {
        this.inflight = null;
        this.socket.end();
        return;
      }
      const payload = request(issued++);
      this.inflight = { payload, sentAt: performance.now(), tries: 1 };
      this.socket.write(payload);
    }

    /** One GET answered on this connection: the server has accepted it and reads from it. */
    prime(path: string): Promise<void> {
      return new Promise((resolve) => {
        this.priming = resolve;
        this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`);
      });
    }

    onData(chunk: Buffer): void {
      this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
      const f = frame(this.buf);
      if (f === null) return;
      if (this.priming && f !== 'bad') {
        const done = this.priming;
        this.priming = null;
        this.buf = f.end < this.buf.length ? this.buf.subarray(f.end) : null;
        done();
        return;
      }
      const a = this.inflight;
      if (f === 'bad' || !a) {
        this.socket.destroy();
        return;
      }
      const now = performance.now();
      const ms = now - a.sentAt;
      all.add(ms);
      noteSlow(a.sentAt, ms, f.status, this.index, a.tries);
      completed++;
      const buf = this.buf;
      this.buf = f.end < buf.length ? buf.subarray(f.end) : null;
      this.inflight = null;
      if (f.status === 201) {
        accepted++;
        bump('201');
        acceptedH.add(ms);
        lastAccepted = now;
        soldOutSinceAccepted = 0;
        tick(now, 0);
        const id = stringAfter(buf, ORDER_ID, f.bodyStart, f.bodyEnd);
        if (id) orders.push([id, +(now - t0).toFixed(1)]);
      } else {
        const code = stringAfter(buf, ERROR, f.bodyStart, f.bodyEnd);
        bump(code ? `${f.status} ${code}` : String(f.status));
        if (f.status === 409 && code === 'sold_out') {
          soldOut++;
          soldOutH.add(ms);
          soldOutSinceAccepted++;
          if (firstSoldOut === null) firstSoldOut = now;
          tick(now, 1);
        } else {
          other++;
          tick(now, 2);
        }
      }
      if (f.close) this.socket.end();
      else this.next();
      if (stopping) checkDone();
    }

    onClose(): void {
      const a = this.inflight;
      if (stopping) {
        openConns--;
        checkDone();
        return;
      }
      const more = a !== null || issued < o.attempts;
      if (!more) {
        openConns--;
        checkDone();
        return;
      }
      // Resend the unanswered request (same key) on a new connection, or carry on with the next.
      if (a && a.tries >= 3) {
        failed++;
        this.inflight = null;
      }
      void this.connect().then((ok) => {
        if (!ok) {
          if (this.inflight) failed++;
          this.inflight = null;
          openConns--;
          checkDone();
          return;
        }
        if (this.inflight) {
          this.inflight.tries++;
          resent++;
          this.socket.write(this.inflight.payload);
        } else this.next();
      });
    }
  }

  // Connect everything first, in batches.
  const conns: Conn[] = [];
  let connectFailures = 0;
  for (let i = 0; i < o.clients; i += o.connectBatch) {
    const batch = Array.from({ length: Math.min(o.connectBatch, o.clients - i) }, (_, k) => new Conn(i + k));
    const oks = await Promise.all(batch.map((c) => c.connect()));
    batch.forEach((c, k) => (oks[k] ? conns.push(c) : connectFailures++));
  }
  if (conns.length === 0) throw new Error(`no connection to ${o.host}:${o.port}`);
  // One GET per connection, answered, before the clock starts: a connection the server has not
  // accept()ed yet (a full accept queue) would otherwise add TCP retransmission backoff to its
  // first purchase.
  const primeStarted = performance.now();
  for (let i = 0; i < conns.length; i += o.connectBatch) {
    const batch = conns.slice(i, i + o.connectBatch).map((c) => c.prime(o.primePath));
    const stuck = sleep(10_000).then(() => 'stuck' as const);
    if ((await Promise.race([Promise.all(batch), stuck])) === 'stuck') throw new Error(`GET ${o.primePath} unanswered on some connections after 10 s`);
  }
  const primed = conns.filter((c) => c.alive);
  connectFailures += conns.length - primed.length;
  conns.splice(0, conns.length, ...primed);
  if (conns.length === 0) throw new Error(`no connection to ${o.host}:${o.port} survived GET ${o.primePath}`);
  log(`  load: ${conns.length}/${o.clients} connections open and primed (GET ${o.primePath}, ${Math.round(performance.now() - primeStarted)} ms); sending ${o.attempts} attempts`);
  openConns = conns.length;
  started = true;
  const startedAt = Date.now();
  t0 = performance.now();
  for (const c of conns) c.next();

  const progress = setInterval(() => {
    log(`  load: ${completed}/${o.attempts} answered in ${((performance.now() - t0) / 1000).toFixed(1)} s: 201 ${accepted}, sold_out ${soldOut}, other ${other}`);
  }, 1000);
  const limit = setTimeout(() => {
    timedOut = true;
    stopping = true;
    log(`  load: --max-seconds ${o.maxSeconds} reached; stopping`);
    for (const c of conns) {
      if (c.inflight) failed++;
      c.inflight = null;
      c.socket.destroy();
    }
    finish();
  }, o.maxSeconds * 1000);
  await done;
  const end = performance.now();
  clearInterval(progress);
  clearTimeout(limit);
  stopping = true;
  for (const c of conns) c.socket.destroy();

  const rel = (t: number | null) => (t === null ? null : +(t - t0).toFixed(1));
  const durationMs = end - t0;
  const fromMs = lastAccepted === null ? 0 : lastAccepted - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    type: 'summary',
    sku: o.sku,
    clients: o.clients,
    connected: conns.length,
    connectFailures,
    startedAt,
    durationMs: +durationMs.toFixed(1),
    issued,
    completed,
    attemptsPerS: Math.round(completed / (durationMs / 1000)),
    counts,
    accepted,
    soldOut,
    other,
    resent,
    failed,
    timedOut,
    latencyMs: { all: all.summary(), accepted: acceptedH.summary(), soldOut: soldOutH.summary() },
    firstSoldOutMs: rel(firstSoldOut),
    lastAcceptedMs: rel(lastAccepted),
    afterSellOut: {
      fromMs: +fromMs.toFixed(1),
      durationMs: +(durationMs - fromMs).toFixed(1),
      soldOut: soldOutSinceAccepted,
      soldOutPerS: durationMs - fromMs > 0 ? Math.round(soldOutSinceAccepted / ((durationMs - fromMs) / 1000)) : null,
    },
    timeline,
    slowest,
    orders,
    cpuS: +((cpu.user + cpu.system) / 1e6).toFixed(2),
  };
}

// ---------------------------------------------------------------------------------------------
// the process

function parseOptions(argv: string[]): LoadOptions {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, fallback: number | undefined): number => {
    const raw = get(name);
    if (raw === undefined) {
      if (fallback === undefined) fatal(`--${name} is required`);
      return fallback;
    }
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) fatal(`--${name} needs a positive number (got ${JSON.stringify(raw)})`);
    return n;
  };
  const host = get('host') ?? '127.0.0.1';
  // Loopback only: this is a load generator.
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== 'localhost' && host !== '::1') fatal(`--host must be a loopback address (got ${host})`);
  const sku = get('sku');
  if (!sku) fatal('--sku is required');
  return {
    host,
    port: Math.round(num('port', undefined)),
    sku,
    clients: Math.round(num('clients', 2000)),
    attempts: Math.round(num('attempts', 100_000)),
    customers: Math.round(num('customers', 100_000)),
    maxSeconds: num('max-seconds', 120),
    connectBatch: Math.round(num('connect-batch', 250)),
    primePath: get('prime-path') ?? '/healthz',
    apiKey: get('api-key'),
    channel: get('channel'),
  };
}

function fatal(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const o = parseOptions(process.argv.slice(2));
  const summary = await runLoad(o, (line) => process.stderr.write(`${line}\n`));
  // Exit only once the (possibly large: one entry per order) line is flushed into the pipe.
  process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(0));
}
