/**
 * The floor under any Node HTTP purchase endpoint on this machine: a bare node:http server that
 * reads and parses the JSON body of POST and answers a fixed 409 sold-out body (GET answers `{}`,
 * for the load child's priming). Nothing else. Compare its attempts/s with the gateway's, under
 * the same load child (tools/bench/flash-sale-load.ts); see docs/benchmarks.md, purchase path.
 *
 * With `--redis`, the floor of a Redis-gated endpoint: before answering, one Lua call on the
 * stack's Redis (REDIS_URL, ioredis with auto-pipelining as the gateway's purchase connection)
 * with the gate's shape — 10 keys and a packed JSON argument of the same size as a one-item
 * gate-reserve call — whose script only answers the gate's sold-out reply. No validation,
 * authentication, hashing, metrics or error objects: what is left is HTTP plus a Redis round trip.
 *
 * Usage: node --max-semi-space-size=64 --import tsx tools/bench/http-floor-server.ts [--port 39999] [--redis]
 */
import http from 'node:http';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createRedis } from '../../lib/redis.ts';

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 39999;
const body = JSON.stringify({ error: 'sold_out', message: 'SKU X has 0 unit(s) available, 1 requested', details: { sku: 'X', requested: 1, available: 0 } });

type Gate = (sku: string, customer: string) => Promise<unknown>;

/** One gate-shaped Lua call per attempt (see the header); the script answers SOLD_OUT (-5) for the first item, 0 available. */
function redisGate(): Gate {
  const config = loadConfigOrExit();
  const redis = createRedis(config.redis, { autoPipelining: true });
  redis.defineCommand('floorGate', { lua: 'return { -5, 1, 0 }' });
  const call = (redis as unknown as { floorGate(n: number, ...args: string[]): Promise<unknown> }).floorGate.bind(redis);
  const p = `${config.redis.prefix}:floor`;
  return (sku, customer) => {
    const now = Date.now();
    const arg = JSON.stringify({
      now,
      holdId: '00000000-0000-4000-8000-000000000000',
      hash: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      customer,
      settleDeadline: now + 30_000,
      idemTtl: 86_400,
      custTtl: 86_400,
      maxPerCustomer: 1000,
      rateCustomer: { capacity: 1, perSec: 0 },
      rateAddress: { capacity: 1, perSec: 0 },
      items: [[sku, 1]],
    });
    return call(10, `${p}:{0}:idem:${customer}:k`, `${p}:{0}:hold:h`, `${p}:{0}:gate:unsettled`, `${p}:rl:c:${customer}`, `${p}:rl:a:127.0.0.1`, `${p}:{${sku}}`, `${p}:{${sku}}:gate`, `${p}:{${sku}}:gate:holds`, `${p}:{${sku}}:gate:cust`, `${p}:{0}:epoch`, arg);
  };
}

const gate = process.argv.includes('--redis') ? redisGate() : undefined;

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.end('{}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { customerId?: string; items?: Array<{ sku?: string }> };
    const answer = () => {
      res.writeHead(409, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (!gate) return answer();
    gate(String(parsed.items?.[0]?.sku), String(parsed.customerId ?? req.headers['x-customer-id'])).then(answer, () => {
      res.writeHead(503).end();
    });
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
