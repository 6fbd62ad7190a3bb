/**
 * The floor under any Node HTTP purchase endpoint on this machine: a bare node:http server that
 * reads and parses the JSON body of POST and answers a fixed 409 sold-out body (GET answers `{}`,
 * for the load child's priming). Nothing else. Compare its attempts/s with the gateway's, under
 * the same load child (tools/bench/flash-sale-load.ts); see docs/benchmarks.md, purchase path.
 *
 * Usage: node --max-semi-space-size=32 --import tsx tools/bench/http-floor-server.ts [--port 39999]
 */
import http from 'node:http';

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 39999;
const body = JSON.stringify({ error: 'sold_out', message: 'SKU X has 0 unit(s) available, 1 requested', details: { sku: 'X', requested: 1, available: 0 } });

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.end('{}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(409, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
