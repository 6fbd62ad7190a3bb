/** The gateway's Prometheus metrics. Names are stable: dashboards and alerts use them. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';

export interface GatewayMetrics {
  registry: Registry;
  connections: Gauge<'channel'>;
  framesSent: Counter;
  itemsSent: Counter;
  feedEntries: Counter;
  closed: Counter<'code'>;
  invalidFrames: Counter<'code'>;
  upgradesRefused: Counter<'reason'>;
  httpRequests: Counter<'route' | 'status'>;
  httpDuration: Histogram<'route'>;
  purchases: Counter<'outcome'>;
  writeBackBatch: Histogram;
  writeBackSeconds: Histogram;
}

export function createGatewayMetrics({ defaults = true }: { defaults?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'invsync_gateway_' });
  return {
    registry,
    connections: new Gauge({ name: 'invsync_gateway_connections', help: 'Open WebSocket connections', labelNames: ['channel'], registers: [registry] }),
    framesSent: new Counter({ name: 'invsync_gateway_frames_sent_total', help: 'Deltas frames sent', registers: [registry] }),
    itemsSent: new Counter({ name: 'invsync_gateway_items_sent_total', help: 'SKU items delivered in deltas frames', registers: [registry] }),
    feedEntries: new Counter({ name: 'invsync_gateway_feed_entries_total', help: 'Feed entries received from Redis', registers: [registry] }),
    closed: new Counter({ name: 'invsync_gateway_closed_total', help: 'Connections closed by the gateway, by close code', labelNames: ['code'], registers: [registry] }),
    invalidFrames: new Counter({ name: 'invsync_gateway_invalid_frames_total', help: 'Client frames refused, by error code', labelNames: ['code'], registers: [registry] }),
    upgradesRefused: new Counter({
      name: 'invsync_gateway_upgrades_refused_total',
      help: 'WebSocket upgrades refused before a connection existed (bad_request, not_found, too_many_connections, too_many_connections_from_address)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    httpRequests: new Counter({ name: 'invsync_gateway_http_requests_total', help: 'HTTP requests', labelNames: ['route', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'invsync_gateway_http_request_seconds',
      help: 'HTTP request duration',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    purchases: new Counter({ name: 'invsync_gateway_purchases_total', help: 'Purchase attempts by outcome (reserved, replayed, sold_out, rate_limited, ...)', labelNames: ['outcome'], registers: [registry] }),
    writeBackBatch: new Histogram({ name: 'invsync_gateway_write_back_batch_size', help: 'Holds written per write-back transaction', buckets: [1, 2, 5, 10, 25, 50, 100, 200], registers: [registry] }),
    writeBackSeconds: new Histogram({
      name: 'invsync_gateway_write_back_seconds',
      help: 'Write-back transaction duration',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}

/**
 * `inc` of `counter` by the value of its label `name` (the others fixed): each value's child is
 * looked up once, not on every call (prom-client hashes the labels object each time). For labels
 * with a small fixed set of values (statuses, outcome kinds): the cache is never trimmed.
 */
export function counterBy<L extends string>(counter: Counter<L>, name: L, fixed: Omit<LabelValues<L>, L> | LabelValues<L> = {}): (value: string) => void {
  const children = new Map<string, Counter.Internal>();
  return (value) => {
    let child = children.get(value);
    if (!child) children.set(value, (child = counter.labels({ ...fixed, [name]: value } as LabelValues<L>)));
    child.inc();
  };
}
