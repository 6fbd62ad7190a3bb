/**
 * A minimal HTTP endpoint for a background process: GET /metrics (Prometheus text),
 * /healthz (process alive) and /readyz (dependencies connected, from the `ready` callback).
 * Anything else is a JSON 404. The gateway has its own, richer HTTP server.
 */
import http from 'node:http';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export function startMetricsServer(deps: {
  registry: Registry;
  port: number;
  host?: string;
  ready: () => boolean;
}): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return json(405, { error: 'method_not_allowed', message: 'only GET is served here' });
    if (url === '/metrics') {
      deps.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': deps.registry.contentType });
          res.end(text);
        },
        (err: Error) => json(500, { error: 'metrics_failed', message: err.message }),
      );
      return;
    }
    if (url === '/healthz') return json(200, { status: 'ok' });
    if (url === '/readyz') return deps.ready() ? json(200, { status: 'ready' }) : json(503, { status: 'not_ready' });
    return json(404, { error: 'not_found', message: `no route ${url}` });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host ?? '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : deps.port,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
