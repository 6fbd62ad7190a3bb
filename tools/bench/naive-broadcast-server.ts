/**
 * The "naive broadcast" baseline for tools/bench/ws-fanout.ts: a minimal `ws` server on /v1/stream that
 * reads the same Redis feed stream as the gateway (XREAD BLOCK from its end) and, for every entry,
 * does one `ws.send(JSON.stringify({type:'deltas', rts, items:[item]}))` per client subscribed
 * to the entry's SKU: no coalescing, no shared buffers, no slow-consumer policing. It speaks just
 * enough of the gateway's protocol for the load client: welcome on connect, `subscribe` answered
 * with `{"type":"subscribed"}`. Items have the storefront shape (sku, available, version, commitTs).
 *
 * Not part of the product; run by the benchmark as a child process.
 *
 * Usage: node --import tsx tools/bench/naive-broadcast-server.ts --port 18090 --key <prefix>:feed
 *          [--redis-url redis://127.0.0.1:16379] [--max-seconds 900]
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

const argv = process.argv.slice(2);
const arg = (name: string, fallback?: string): string => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : fallback;
  if (v === undefined) {
    process.stderr.write(`error: --${name} is required\n`);
    process.exit(2);
  }
  return v;
};
const port = Number(arg('port'));
const key = arg('key');
const redisUrl = arg('redis-url', 'redis://127.0.0.1:16379');
const maxSeconds = Number(arg('max-seconds', '900'));

interface Client {
  ws: WebSocket;
  skus: Set<string>;
}

const clients = new Set<Client>();
let reading = false;
let sends = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(reading ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ready: reading, clients: clients.size, sends }));
    return;
  }
  res.writeHead(404).end();
});

const wss = new WebSocketServer({ server, path: '/v1/stream', perMessageDeflate: false });
wss.on('connection', (ws) => {
  const client: Client = { ws, skus: new Set() };
  clients.add(client);
  ws.on('error', () => undefined);
  ws.on('close', () => clients.delete(client));
  ws.on('message', (data) => {
    let msg: { op?: unknown; skus?: unknown; id?: unknown };
    try {
      msg = JSON.parse(String(data)) as typeof msg;
    } catch {
      return;
    }
    if (msg.op === 'subscribe' && Array.isArray(msg.skus)) {
      for (const s of msg.skus) if (typeof s === 'string') client.skus.add(s);
      ws.send(JSON.stringify({ type: 'subscribed', skus: client.skus.size, ...(msg.id === undefined ? {} : { id: msg.id }) }));
    }
  });
  ws.send(JSON.stringify({ type: 'welcome', protocol: 1, channel: 'storefront', cursor: lastId }));
});

const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
let lastId = '$';
let running = true;

async function readLoop(): Promise<void> {
  const last = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
  lastId = last[0]?.[0] ?? '0-0';
  reading = true;
  while (running) {
    const res = (await redis.xread('COUNT', 2000, 'BLOCK', 500, 'STREAMS', key, lastId)) as Array<[string, Array<[string, string[]]>]> | null;
    if (!res) continue;
    const rts = Date.now();
    for (const [, entries] of res) {
      for (const [id, fields] of entries) {
        lastId = id;
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
        const sku = f.sku;
        if (!sku) continue;
        const item = { sku, available: Number(f.available ?? 0), version: Number(f.version ?? 0), commitTs: Number(f.commitTs ?? 0) };
        for (const c of clients) {
          if (!c.skus.has(sku) || c.ws.readyState !== c.ws.OPEN) continue;
          c.ws.send(JSON.stringify({ type: 'deltas', rts, items: [item] }));
          sends++;
        }
      }
    }
  }
}

function stop(code: number): void {
  running = false;
  for (const c of clients) c.ws.terminate();
  redis.disconnect();
  server.close();
  setTimeout(() => process.exit(code), 200).unref();
}

process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
setTimeout(() => stop(1), maxSeconds * 1000).unref();

server.listen(port, '127.0.0.1', () => {
  readLoop().catch((err: unknown) => {
    if (!running) return;
    process.stderr.write(`naive server: feed read failed: ${(err as Error).message}\n`);
    stop(1);
  });
});
