/**
 * The gateway as a running service: HTTP API + WebSocket fan-out on one port, fed by the
 * processor's Redis feed. Stateless apart from its connections: run as many as needed behind a
 * load balancer, each reads the whole feed.
 */
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import type { Config } from '../lib/config.ts';
import { PROJECT_ROOT } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { createPgPool } from '../lib/pg.ts';
import { createRedis } from '../lib/redis.ts';
import { PurchaseService } from '../purchase/service.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { AdjustmentStore } from '../connectors/inbound/adapters/pg-adjustments.ts';
import { FeedReader } from './adapters/feed.ts';
import { createAdjustmentRoutes } from './adjustments-http.ts';
import { createVerifier } from './auth.ts';
import { CLOSE } from './domain/protocol.ts';
import { createHttpApp } from './http.ts';
import { Hub } from './hub.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { createOrderRoutes, createPurchaseHandler, isPurchaseRoute } from './purchase-http.ts';
import { attachWebSocket } from './ws-server.ts';

export interface GatewayService {
  port: number;
  url: string;
  hub: Hub;
  metrics: GatewayMetrics;
  purchases: PurchaseService;
  stop(): Promise<void>;
}

let bundle: Promise<string> | undefined;

/** The SDK built for browsers (ESM), once per process. */
export function sdkBundle(): Promise<string> {
  bundle ??= import('esbuild').then(async (esbuild) => {
    const out = await esbuild.build({
      entryPoints: [path.join(PROJECT_ROOT, 'gateway', 'client', 'sdk.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2020',
      write: false,
      minify: false,
      logLevel: 'silent',
    });
    return out.outputFiles[0]!.text;
  });
  // A failed build is not cached: the next request tries again.
  bundle.catch(() => {
    bundle = undefined;
  });
  return bundle;
}

export async function startGatewayService(
  config: Readonly<Config>,
  logger: Logger,
  overrides: { port?: number; metricsDefaults?: boolean } = {},
): Promise<GatewayService> {
  const log = logger.child({ component: 'gateway' });
  const redis = createRedis(config.redis.url);
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const views = new RedisViews({ redis, prefix: config.redis.prefix });
  const metrics = createGatewayMetrics({ defaults: overrides.metricsDefaults ?? true });
  const feed = new FeedReader({ redis, key: views.keys.feed, logger });
  const pool = createPgPool(config.pg.url, { max: config.purchase.pgPool, application: 'invsync-gateway' });
  pool.on('error', (err) => log.warn({ err: err.message }, 'postgres connection error'));
  // The purchase path gets its own connection, auto-pipelined: under a flash sale thousands of
  // gate calls are in flight at once, and one write per tick beats one write per call.
  const purchaseRedis = createRedis(config.redis.url, { autoPipelining: true });
  purchaseRedis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error (purchase path)'));
  const purchases = new PurchaseService({
    redis: purchaseRedis,
    pool,
    config,
    logger,
    events: {
      outcome: (kind) => metrics.purchases.inc({ outcome: kind }),
      writeBatch: (n, s) => {
        metrics.writeBackBatch.observe(n);
        metrics.writeBackSeconds.observe(s);
      },
    },
  });
  // One credential verifier for HTTP and WebSocket (gateway/auth.ts, docs/security-credentials.md).
  const verifier = createVerifier({ apiKeys: config.gateway.apiKeys, jwtSecret: config.gateway.jwtSecret, ...config.auth });
  const { authenticate } = verifier;
  const identity = { verifier, allowAnonymous: config.auth.allowAnonymous };
  if (config.auth.allowAnonymous) log.warn('PURCHASE_ALLOW_ANONYMOUS=1: purchases without a credential are accepted (development only)');
  if (config.gateway.devKeys) log.warn('GATEWAY_API_KEYS is unset: the public development keys (dev-*-key) are accepted (development only)');
  // More API routes: the purchase path's orders and tickets, and the HTTP twin of stock.adjustments
  // (it shares the pool: adjustments are rare next to purchases).
  const routes = express.Router({ caseSensitive: true, strict: true });
  routes.use(createOrderRoutes(purchases, identity));
  routes.use(createAdjustmentRoutes({ store: new AdjustmentStore({ pool }), verifier, logger }));
  const hub = new Hub({ tickMs: config.gateway.tickMs, maxBufferedBytes: config.gateway.maxBufferedBytes, metrics, cursor: () => feed.lastId });
  const app = createHttpApp({
    views,
    metrics,
    sdkBundle,
    logger,
    routes,
    verifier,
    ready: () => {
      const checks = { redis: redis.status === 'ready', feed: feed.connected };
      // Purchases also need purchaseRedis and Postgres; they answer 503 by themselves when either is down.
      return { ready: checks.redis && checks.feed, checks };
    },
  });
  const handlePurchase = createPurchaseHandler({ service: purchases, metrics, logger, identity });
  const server = http.createServer((req, res) => (isPurchaseRoute(req) ? handlePurchase(req, res) : app(req, res)));
  const wss = attachWebSocket({
    server,
    hub,
    feed,
    views,
    authenticate,
    config: config.gateway,
    metrics,
    logger,
  });
  await feed.start((entries) => hub.publish(entries));
  hub.start();
  purchases.start();
  const port = overrides.port ?? config.gateway.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, config.gateway.host, () => resolve());
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  log.info({ port: actualPort }, 'gateway listening');
  return {
    port: actualPort,
    url: `http://${config.gateway.host}:${actualPort}`,
    hub,
    metrics,
    purchases,
    async stop() {
      hub.stop();
      purchases.stop();
      for (const client of wss.clients) client.close(CLOSE.goingAway.code, 'gateway shutting down');
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await feed.stop();
      redis.disconnect();
      purchaseRedis.disconnect();
      await pool.end().catch(() => undefined);
    },
  };
}
