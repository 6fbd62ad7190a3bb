/**
 * WebSocket load client for the gateway benchmarks (tools/bench/ws-fanout.ts, tools/bench/ws-idle-memory.ts).
 * Runs as its own process: it opens N connections to `/v1/stream`, subscribes each to SKUs, and
 * counts what arrives, so that receipt happens in a different process from the server (same
 * clock: Date.now()).
 *
 * To keep the client from being the bottleneck on a small machine, it speaks the WebSocket
 * protocol itself over `net` sockets (RFC 6455: handshake, masked client frames, unmasked server
 * frames, ping/pong, close) instead of using the `ws` package: one socket read usually carries
 * many frames, and a deltas frame is never decoded into objects. Per deltas frame it
 *   - counts the items (occurrences of `"sku":` in the payload),
 *   - takes latency = receipt time - the frame's `rts` (every frame, 1 ms histogram),
 *   - for 1 frame in --sample (default 20), also receipt time - each item's `commitTs` (the
 *     benchmark driver writes the feed entry's creation time there), another histogram, and the
 *     highest item `version` seen (how far into the feed the server has got).
 *
 * Control protocol (driver <-> client): JSON lines. stdout: `{"type":"ready",...}` once every
 * connection is open and its subscription acknowledged (or failed), `{"type":"report",...}` when
 * asked. stdin: `{"cmd":"reset"}` zeroes counters and histograms, `{"cmd":"report","id":1}`,
 * `{"cmd":"exit"}`. The client exits by itself on stdin EOF or after --max-seconds.
 * Progress goes to stderr.
 *
 * Usage: node --import tsx tools/bench/ws-load-client.ts --port 18080 [--host 127.0.0.1]
 *   [--clients 10000] [--skus 100] [--sku-prefix BENCHWS-] [--sku-mode same|spread]
 *   [--sku-space 10000] [--batch 500] [--sample 20] [--max-seconds 600]
 */
import crypto from 'node:crypto';
import net from 'node:net';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { LatencySummary } from './lib/stats.ts';

// ---------------------------------------------------------------------------------------------
// options

export interface LoadClientOptions {
  host: string;
  port: number;
  path: string;
  clients: number;
  skus: number;
  skuPrefix: string;
  /** same: every connection subscribes SKUs 1..skus; spread: connection i gets skus consecutive SKUs starting at i*skus (mod skuSpace). */
  skuMode: 'same' | 'spread';
  skuSpace: number;
  batch: number;
  sample: number;
  maxSeconds: number;
}

export const skuName = (prefix: string, i: number): string => `${prefix}${String(i + 1).padStart(5, '0')}`;

/** The SKU list of connection `index`. */
export function skusFor(o: Pick<LoadClientOptions, 'skus' | 'skuPrefix' | 'skuMode' | 'skuSpace'>, index: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < o.skus; k++) {
    const i = o.skuMode === 'same' ? k : (index * o.skus + k) % o.skuSpace;
    out.push(skuName(o.skuPrefix, i));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// statistics

const HIST_MS = 120_000;

class Histogram {
  readonly bins = new Uint32Array(HIST_MS + 1);
  count = 0;
  max = -Infinity;
  min = Infinity;
  add(ms: number, weight = 1): void {
    const v = ms < 0 ? 0 : ms > HIST_MS ? HIST_MS : ms;
    this.bins[v] = this.bins[v]! + weight;
    this.count += weight;
    if (ms > this.max) this.max = ms;
    if (ms < this.min) this.min = ms;
  }
  reset(): void {
    this.bins.fill(0);
    this.count = 0;
    this.max = -Infinity;
    this.min = Infinity;
  }
  /** Nearest-rank percentile in ms (1 ms resolution). */
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i]!;
      if (seen >= rank) return i;
    }
    return HIST_MS;
  }
  summary(): LatencySummary {
    return {
      count: this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      max: this.count ? this.max : null,
      min: this.count ? this.min : null,
    };
  }
}

interface Counters {
  frames: number;
  items: number;
  bytes: number;
  otherFrames: number;
  closes: Record<string, number>;
  errors: number;
}

const newCounters = (): Counters => ({ frames: 0, items: 0, bytes: 0, otherFrames: 0, closes: {}, errors: 0 });

// ---------------------------------------------------------------------------------------------
// a minimal RFC 6455 client

const SKU_NEEDLE = Buffer.from('"sku":');
const RTS_NEEDLE = Buffer.from('"rts":');
const COMMIT_NEEDLE = Buffer.from('"commitTs":');
const VERSION_NEEDLE = Buffer.from('"version":');
const CH_D = 'd'.charCodeAt(0);
const CH_S = 's'.charCodeAt(0);
const CH_N = 'n'.charCodeAt(0);
const CH_U = 'u'.charCodeAt(0);

/** Parses the unsigned integer written right after `at` (skipping spaces); NaN when none. */
function intAt(buf: Buffer, at: number): number {
  let i = at;
  while (i < buf.length && buf[i] === 0x20) i++;
  let n = 0;
  let digits = 0;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
    digits++;
  }
  return digits ? n : Number.NaN;
}

function countOccurrences(buf: Buffer, needle: Buffer): number {
  let n = 0;
  let i = buf.indexOf(needle, 0);
  while (i >= 0) {
    n++;
    i = buf.indexOf(needle, i + needle.length);
  }
  return n;
}

function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerLen + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  const mask = crypto.randomBytes(4);
  mask.copy(out, headerLen);
  const at = headerLen + 4;
  for (let i = 0; i < len; i++) out[at + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

type Phase = 'handshake' | 'open' | 'closed';

class Conn {
  readonly socket: net.Socket;
  phase: Phase = 'handshake';
  subscribed = false;
  items = 0;
  private buf: Buffer | null = null;
  private fragments: Buffer[] = [];
  private readonly client: LoadClient;
  private readonly skus: string[];
  private readonly onSettled: () => void;
  private settled = false;

  constructor(client: LoadClient, skus: string[], onSettled: () => void) {
    this.client = client;
    this.skus = skus;
    this.onSettled = onSettled;
    const o = client.opts;
    this.socket = net.connect({ host: o.host, port: o.port, noDelay: true });
    this.socket.on('connect', () => {
      const key = crypto.randomBytes(16).toString('base64');
      this.socket.write(
        `GET ${o.path} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => {
      this.client.counters.errors++;
      this.client.errorsTotal++;
    });
    this.socket.on('close', () => {
      if (this.phase !== 'closed') {
        this.phase = 'closed';
        this.client.noteClose('socket-closed');
      }
      this.settle();
    });
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettled();
  }

  send(text: string): void {
    if (this.phase !== 'open') return;
    this.socket.write(maskedFrame(0x1, Buffer.from(text)));
  }

  close(): void {
    if (this.phase === 'open') {
      const body = Buffer.alloc(2);
      body.writeUInt16BE(1000, 0);
      this.socket.write(maskedFrame(0x8, body));
      this.socket.end();
    } else this.socket.destroy();
    this.phase = 'closed';
  }

  private onData(chunk: Buffer): void {
    let buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = null;
    if (this.phase === 'handshake') {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        this.buf = buf;
        return;
      }
      const head = buf.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) {
        this.client.noteClose(`handshake-${head.slice(9, 12)}`);
        this.phase = 'closed';
        this.socket.destroy();
        this.settle();
        return;
      }
      this.phase = 'open';
      this.send(JSON.stringify({ op: 'subscribe', skus: this.skus }));
      buf = buf.subarray(end + 4);
    }
    const now = Date.now();
    let off = 0;
    while (buf.length - off >= 2) {
      const b0 = buf[off]!;
      const b1 = buf[off + 1]!;
      let len = b1 & 0x7f;
      let at = off + 2;
      if (len === 126) {
        if (buf.length - off < 4) break;
        len = buf.readUInt16BE(at);
        at += 2;
      } else if (len === 127) {
        if (buf.length - off < 10) break;
        len = buf.readUInt32BE(at) * 2 ** 32 + buf.readUInt32BE(at + 4);
        at += 8;
      }
      if (b1 & 0x80) at += 4; // servers do not mask; tolerate it anyway (mask ignored: text only counted)
      if (buf.length < at + len) break;
      const payload = buf.subarray(at, at + len);
      off = at + len;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === 0x8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.client.noteClose(String(code));
        this.phase = 'closed';
        this.socket.end();
        this.settle();
        return;
      }
      if (opcode === 0x9) {
        this.socket.write(maskedFrame(0xa, Buffer.from(payload)));
        continue;
      }
      if (opcode === 0xa) continue;
      if (opcode === 0x1 && fin) this.onText(payload, now);
      else if (opcode === 0x1 || opcode === 0x0) {
        this.fragments.push(Buffer.from(payload));
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = [];
          this.onText(whole, now);
        }
      }
    }
    if (off < buf.length) this.buf = Buffer.from(buf.subarray(off));
  }

  /** `{"type":"<t>...`: the type's first letters sit at bytes 9 and 10. */
  private onText(p: Buffer, now: number): void {
    const c = this.client.counters;
    const t0 = p[9];
    if (t0 === CH_D) {
      const items = countOccurrences(p, SKU_NEEDLE);
      c.frames++;
      c.items += items;
      c.bytes += p.length;
      this.items += items;
      const r = p.indexOf(RTS_NEEDLE);
      if (r >= 0) {
        const rts = intAt(p, r + RTS_NEEDLE.length);
        if (Number.isFinite(rts)) this.client.frameLatency.add(now - rts);
      }
      const lastVersion = p.lastIndexOf(VERSION_NEEDLE);
      if (lastVersion >= 0) {
        const v = intAt(p, lastVersion + VERSION_NEEDLE.length);
        if (v > this.client.maxVersion) this.client.maxVersion = v;
      }
      if (++this.client.sampleTick >= this.client.opts.sample) {
        this.client.sampleTick = 0;
        let i = p.indexOf(COMMIT_NEEDLE);
        while (i >= 0) {
          const ts = intAt(p, i + COMMIT_NEEDLE.length);
          if (Number.isFinite(ts)) this.client.itemLatency.add(now - ts);
          i = p.indexOf(COMMIT_NEEDLE, i + COMMIT_NEEDLE.length);
        }
        i = p.indexOf(VERSION_NEEDLE);
        while (i >= 0) {
          const v = intAt(p, i + VERSION_NEEDLE.length);
          if (v > this.client.maxVersion) this.client.maxVersion = v;
          i = p.indexOf(VERSION_NEEDLE, i + VERSION_NEEDLE.length);
        }
      }
      return;
    }
    c.otherFrames++;
    // snapshot ("sn") or subscribed ("su") answers our subscribe.
    if (t0 === CH_S && (p[10] === CH_N || p[10] === CH_U) && !this.subscribed) {
      this.subscribed = true;
      this.client.subscribedCount++;
      this.settle();
    } else if (p.includes('"type":"error"')) {
      this.client.serverErrors++;
      if (this.client.serverErrors <= 3) process.stderr.write(`  load client: server error frame: ${p.subarray(0, 200).toString()}\n`);
      if (!this.subscribed) this.settle();
    }
  }
}

export class LoadClient {
  readonly opts: LoadClientOptions;
  readonly conns: Conn[] = [];
  counters = newCounters();
  readonly frameLatency = new Histogram();
  readonly itemLatency = new Histogram();
  sampleTick = 0;
  /** Highest item version seen (last item of every deltas frame, every item of sampled ones): how far the server got in the feed. */
  maxVersion = 0;
  subscribedCount = 0;
  serverErrors = 0;
  errorsTotal = 0;
  closesTotal: Record<string, number> = {};

  constructor(opts: LoadClientOptions) {
    this.opts = opts;
  }

  noteClose(code: string): void {
    this.counters.closes[code] = (this.counters.closes[code] ?? 0) + 1;
    this.closesTotal[code] = (this.closesTotal[code] ?? 0) + 1;
  }

  /** Opens the connections in batches; each batch waits until all of its connections settled. */
  async ramp(progress: (line: string) => void): Promise<{ ms: number }> {
    const started = Date.now();
    const o = this.opts;
    for (let first = 0; first < o.clients; first += o.batch) {
      const n = Math.min(o.batch, o.clients - first);
      await new Promise<void>((resolve) => {
        let left = n;
        const done = () => {
          left--;
          if (left === 0) resolve();
        };
        const timer = setTimeout(resolve, 30_000); // a batch that hangs does not hang the run
        timer.unref();
        for (let k = 0; k < n; k++) this.conns.push(new Conn(this, skusFor(o, first + k), done));
      });
      if ((first / o.batch) % 4 === 3 || first + n >= o.clients) progress(`  load client: ${this.open()} open, ${this.subscribedCount} subscribed of ${first + n} attempted`);
    }
    return { ms: Date.now() - started };
  }

  open(): number {
    let n = 0;
    for (const c of this.conns) if (c.phase === 'open') n++;
    return n;
  }

  reset(): void {
    this.counters = newCounters();
    this.frameLatency.reset();
    this.itemLatency.reset();
    for (const c of this.conns) c.items = 0;
  }

  report(): Record<string, unknown> {
    let minItems = Infinity;
    let maxItems = 0;
    let zero = 0;
    let open = 0;
    for (const c of this.conns) {
      if (c.phase !== 'open') continue;
      open++;
      if (c.items < minItems) minItems = c.items;
      if (c.items > maxItems) maxItems = c.items;
      if (c.items === 0) zero++;
    }
    return {
      at: Date.now(),
      open,
      subscribed: this.subscribedCount,
      ...this.counters,
      perConnectionItems: { min: open ? minItems : 0, max: maxItems, connectionsWithNone: zero },
      frameLatencyMs: this.frameLatency.summary(),
      itemLatencyMs: this.itemLatency.summary(),
      maxVersion: this.maxVersion,
      serverErrors: this.serverErrors,
      errorsTotal: this.errorsTotal,
      closesTotal: this.closesTotal,
    };
  }

  closeAll(): void {
    for (const c of this.conns) c.close();
  }
}

// ---------------------------------------------------------------------------------------------
// the process

function parseOptions(argv: string[]): LoadClientOptions {
  const str = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
  };
  const num = (name: string, fallback: number) => {
    const v = Number(str(name, String(fallback)));
    if (!Number.isFinite(v) || v <= 0) {
      process.stderr.write(`error: --${name} needs a positive number\n`);
      process.exit(2);
    }
    return v;
  };
  const skuMode = str('sku-mode', 'same');
  if (skuMode !== 'same' && skuMode !== 'spread') {
    process.stderr.write('error: --sku-mode is same or spread\n');
    process.exit(2);
  }
  return {
    host: str('host', '127.0.0.1'),
    port: num('port', 18080),
    path: str('path', '/v1/stream?channel=storefront'),
    clients: Math.round(num('clients', 10_000)),
    skus: Math.round(num('skus', 100)),
    skuPrefix: str('sku-prefix', 'BENCHWS-'),
    skuMode,
    skuSpace: Math.round(num('sku-space', 10_000)),
    batch: Math.round(num('batch', 500)),
    sample: Math.round(num('sample', 20)),
    maxSeconds: num('max-seconds', 600),
  };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const client = new LoadClient(opts);
  const out = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    client.closeAll();
    // Give close frames a moment to leave, then go regardless.
    setTimeout(() => process.exit(code), 300).unref();
  };
  setTimeout(() => {
    progress(`  load client: --max-seconds ${opts.maxSeconds} reached, exiting`);
    exit(1);
  }, opts.maxSeconds * 1000).unref();
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));

  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let msg: { cmd?: string; id?: unknown };
    try {
      msg = JSON.parse(line) as { cmd?: string; id?: unknown };
    } catch {
      return;
    }
    if (msg.cmd === 'reset') {
      client.reset();
      out({ type: 'reset', id: msg.id ?? null, at: Date.now() });
    } else if (msg.cmd === 'report') out({ type: 'report', id: msg.id ?? null, ...client.report() });
    else if (msg.cmd === 'exit') exit(0);
  });
  rl.on('close', () => exit(0));

  progress(`  load client: opening ${opts.clients} connections to ${opts.host}:${opts.port} in batches of ${opts.batch}, ${opts.skus} SKUs each (${opts.skuMode})`);
  const { ms } = await client.ramp(progress);
  out({ type: 'ready', connected: client.open(), subscribed: client.subscribedCount, attempted: opts.clients, rampMs: ms, closes: client.closesTotal, errors: client.errorsTotal });
  // The heap grows while connecting; nothing else runs here afterwards but the reads.
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) await main();
