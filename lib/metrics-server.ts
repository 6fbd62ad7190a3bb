/**
 * A minimal HTTP endpoint for a background process: GET /metrics (Prometheus text),
 * /healthz (process alive) and /readyz (dependencies connected, from the `ready` callback).
 * Anything else is a JSON 404. The gateway has its own, richer HTTP server.
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import { errorResponse } from './error-response.ts';
import { InternalError, MethodNotAllowedError, NotFoundError } from './errors.ts';

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
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...headers, 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    // Refusals come from the error catalog (lib/errors.ts), like every other answer.
    const refuse = (err: Error) => {
      const a = errorResponse(err);
      json(a.status, a.body, a.headers);
    };
    if (req.method !== 'GET') return refuse(new MethodNotAllowedError('only GET is served here', { headers: { Allow: 'GET' } }));
    if (url === '/metrics') {
      deps.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': deps.registry.contentType });
          res.end(text);
        },
        (err: Error) => refuse(new InternalError(`metrics could not be collected: ${err.message}`, { cause: err })),
      );
      return;
    }
    if (url === '/healthz') return json(200, { status: 'ok' });
    if (url === '/readyz') return deps.ready() ? json(200, { status: 'ready' }) : json(503, { status: 'not_ready' });
    return refuse(new NotFoundError(`no route ${url}`));
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
