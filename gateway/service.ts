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
import { errorResponse } from '../lib/error-response.ts';
import { BadRequestError, BodyTooLargeError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { startMetricsServer, type MetricsServer } from '../lib/metrics-server.ts';
import { createPgPool } from '../lib/pg.ts';
import { createRedis } from '../lib/redis.ts';
import { PurchaseService } from '../purchase/service.ts';
import { createPurchasePorts } from '../purchase/wiring.ts';
import { createAdjustmentApplier } from '../connectors/adjustments.ts';
import { createReceiptStore } from '../connectors/receipts.ts';
import { AlertStreamReader } from './adapters/alert-stream.ts';
import { FeedReader } from './adapters/feed.ts';
import { AlertFanout } from './alert-fanout.ts';
import { StockViewReader } from './adapters/stock-reader.ts';
import { ChannelWatcher } from '../lib/channel-config.ts';
import { KitWatcher } from '../lib/kit-config.ts';
import { KitFanout } from './kit-fanout.ts';
import { createAdjustmentRoutes } from './adjustments-http.ts';
import { createReceiptRoutes } from './receipts-http.ts';
import { createMovementRoutes } from './movements-http.ts';
import { createVerifier } from './auth.ts';
import { CLOSE_CODES } from '../lib/contracts/protocol.ts';
import { discardRest, declaredLength } from './body.ts';
import { createHttpApp, SECURITY_HEADERS } from './http.ts';
import { Hub } from './hub.ts';
import { counterBy, createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { createOrderRoutes, createPurchaseHandler, isPurchaseRoute } from './purchase-http.ts';
import { attachWebSocket } from './ws-server.ts';
import { HttpDrain, sleep, waitClosed } from './drain.ts';
import { parserStatus, rawHttpAnswer, sendAnswer } from './raw-answer.ts';

/** No route takes a body larger than this; a larger declared Content-Length is refused before routing. */

/** The security headers as entries, made once (every request sets them). */
const SECURITY_HEADER_ENTRIES = Object.entries(SECURITY_HEADERS);

function setSecurityHeaders(res: http.ServerResponse): void {
  for (const [name, value] of SECURITY_HEADER_ENTRIES) res.setHeader(name, value);
}
export const MAX_REQUEST_BODY_BYTES = 64 * 1024;

export interface GatewayService {
  port: number;
  url: string;
  /** The metrics listener (/metrics, /healthz, /readyz), or undefined when disabled. */
  metricsUrl: string | undefined;
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
  /** port 0 (tests): an ephemeral API port, and an ephemeral metrics port unless metricsPort says otherwise (null: none). */
  overrides: { port?: number; metricsDefaults?: boolean; metricsPort?: number | null } = {},
): Promise<GatewayService> {
  const log = logger.child({ component: 'gateway' });
  const redis = createRedis(config.redis);
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const pool = createPgPool(config.pg.url, { max: config.purchase.pgPool, application: 'invsync-gateway' });
  pool.on('error', (err) => log.warn({ err: err.message }, 'postgres connection error'));
  // The sales channels (docs/channels.md): which exist, who may sell on them; polled by version.
  const channels = new ChannelWatcher({ pool, log, pollMs: config.channels.pollMs });
  await channels.start();
  // The kit catalog (docs/kits.md): polled by version like the channels, at the same period.
  let kitFanout: KitFanout | undefined;
  const kits = new KitWatcher({ pool, log, pollMs: config.channels.pollMs, onChange: () => kitFanout?.refresh() });
  await kits.start();
  const views = new StockViewReader({ redis, prefix: config.redis.prefix, channels, kits });
  const metrics = createGatewayMetrics({ defaults: overrides.metricsDefaults ?? true });
  const feed = new FeedReader({ redis, key: views.keys.feed, logger });
  const alertStream = new AlertStreamReader({ redis, key: views.keys.alertStream, logger });
  // The purchase path gets its own connection, auto-pipelined: under a flash sale thousands of
  // gate calls are in flight at once, and one write per tick beats one write per call.
  const purchaseRedis = createRedis(config.redis, { autoPipelining: true });
  purchaseRedis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error (purchase path)'));
  const purchases = new PurchaseService(
    createPurchasePorts({
      redis: purchaseRedis,
      pool,
      config,
      logger,
      events: {
        outcome: counterBy(metrics.purchases, 'outcome'),
        writeBatch: (n, s) => {
          metrics.writeBackBatch.observe(n);
          metrics.writeBackSeconds.observe(s);
        },
      },
    }),
  );
  // One credential verifier for HTTP and WebSocket (gateway/auth.ts, docs/security.md#credentials-who-may-do-what).
  const verifier = createVerifier({ apiKeys: config.gateway.apiKeys, jwtSecret: config.gateway.jwtSecret, ...config.auth });
  const { authenticate } = verifier;
  const identity = { verifier, allowAnonymous: config.auth.allowAnonymous, channels, kits };
  if (config.auth.allowAnonymous) log.warn('PURCHASE_ALLOW_ANONYMOUS=1: purchases without a credential are accepted (development only)');
  if (config.gateway.devKeys) log.warn('GATEWAY_API_KEYS is unset: the public development keys (dev-*-key) are accepted (development only)');
  // More API routes: the purchase path's orders and tickets, and the HTTP twin of stock.adjustments
  // (it shares the pool: adjustments are rare next to purchases).
  const routes = express.Router({ caseSensitive: true, strict: true });
  routes.use(createOrderRoutes(purchases, identity));
  routes.use(createAdjustmentRoutes({ store: createAdjustmentApplier({ pool }), verifier, logger }));
  // Expected receipts, receiving and backorder policies (docs/incoming.md): rare writes, same pool.
  routes.use(createReceiptRoutes({ store: createReceiptStore({ pool }), verifier, logger }));
  routes.use(createMovementRoutes({ pool, verifier }));
  // Graceful stop (docs/operations.md): readiness red -> refuse new work -> in-flight finishes.
  const drain = new HttpDrain();
  const hub = new Hub({
    tickMs: config.gateway.tickMs,
    maxBufferedBytes: config.gateway.maxBufferedBytes,
    maxReplyFrameBytes: config.gateway.limits.maxReplyFrameBytes,
    metrics,
    cursor: () => feed.lastId,
  });
  kitFanout = new KitFanout({ hub, kits, views, logger });
  const kitsLive = kitFanout;
  const readiness = () => {
    const checks = { redis: redis.status === 'ready', feed: feed.connected, accepting: drain.phase === 'serving' };
    // Purchases also need purchaseRedis and Postgres; they answer 503 by themselves when either is down.
    return { ready: checks.redis && checks.feed && checks.accepting, checks };
  };
  const app = createHttpApp({
    views,
    metrics,
    sdkBundle,
    logger,
    routes,
    verifier,
    ready: readiness,
  });
  const handlePurchase = createPurchaseHandler({ service: purchases, metrics, logger, identity });
  const server = http.createServer(drain.track((req, res) => {
    // Crash safety: nothing a request carries may throw out of here (docs/security.md#gateway-crash-safety-and-limits).
    try {
      // The purchase route writes the security headers with its own, in one list (purchase-http.ts).
      const purchase = isPurchaseRoute(req);
      if (!purchase) setSecurityHeaders(res);
      const declared = declaredLength(req);
      if (declared !== undefined && declared > MAX_REQUEST_BODY_BYTES) {
        // Refused before a byte of the body is read (the routes' own limits are smaller still).
        if (purchase) setSecurityHeaders(res);
        sendAnswer(res, errorResponse(new BodyTooLargeError(`a request body is at most ${MAX_REQUEST_BODY_BYTES} bytes`, { details: { field: 'body' } })));
        discardRest(req);
        return;
      }
      if (purchase) handlePurchase(req, res);
      else app(req, res);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'request refused: it could not be handled');
      if (res.headersSent) return void res.destroy();
      setSecurityHeaders(res);
      sendAnswer(res, errorResponse(new BadRequestError('the request could not be parsed')), { close: true });
    }
  }));
  // Malformed HTTP (bad request line, header overflow, bad chunking): node answers 400 and closes.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (err.code === 'ECONNRESET')) return void socket.destroy();
    const answer = errorResponse(new BadRequestError('malformed HTTP request'));
    socket.end(rawHttpAnswer(answer, parserStatus(err.code, answer.status)));
  });
  const wss = attachWebSocket({
    server,
    hub,
    feed,
    views,
    authenticate,
    config: config.gateway,
    metrics,
    logger,
    kitEntries: (skus) => kitsLive.entriesFor(skus),
  });
  await feed.start((entries) => {
    hub.publish(entries);
    kitsLive.publish(entries);
  });
  const alerts = new AlertFanout({ hub });
  await alertStream.start((list) => alerts.publish(list));
  hub.start();
  purchases.start();
  const port = overrides.port ?? config.gateway.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, config.gateway.host, () => resolve());
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  // /metrics on its own listener (loopback by default), never on the public API port.
  const metricsPort = overrides.metricsPort !== undefined ? overrides.metricsPort : overrides.port === 0 ? 0 : config.gateway.metrics.port || null;
  let metricsServer: MetricsServer | undefined;
  if (metricsPort !== null) {
    try {
      metricsServer = await startMetricsServer({ registry: metrics.registry, port: metricsPort, host: config.gateway.metrics.host, ready: () => readiness().ready });
    } catch (err) {
      // Nothing half-started is left behind.
      hub.stop();
      channels.stop();
      kits.stop();
      purchases.stop();
      await new Promise<void>((r) => server.close(() => r()));
      await feed.stop();
      await alertStream.stop();
      redis.disconnect();
      purchaseRedis.disconnect();
      await pool.end().catch(() => undefined);
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      throw new Error(
        inUse
          ? `GATEWAY_METRICS_PORT ${metricsPort} is in use: give each gateway process on a host its own metrics port (0 disables the listener)`
          : `the metrics listener could not start: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  const metricsUrl = metricsServer ? `http://${config.gateway.metrics.host}:${metricsServer.port}` : undefined;
  log.info({ port: actualPort, metrics: metricsUrl ?? 'off' }, 'gateway listening');
  return {
    port: actualPort,
    url: `http://${config.gateway.host}:${actualPort}`,
    metricsUrl,
    hub,
    metrics,
    purchases,
    async stop() {
      // 1. Readiness goes red (load balancers stop sending), for the configured delay.
      drain.phase = 'not_ready';
      log.info({ inFlight: drain.inFlight, sockets: wss.clients.size }, 'draining: readiness red');
      if (config.lifecycle.readinessDelayMs > 0) await sleep(config.lifecycle.readinessDelayMs);
      const deadline = Date.now() + config.lifecycle.drainTimeoutMs;
      // 2. No new connections; new requests on open keep-alive connections get 503 + Connection: close.
      drain.phase = 'refusing';
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      // 3. Subscribers reconnect elsewhere: 1001 "going away" (reconnect: true in the protocol).
      hub.stop();
      channels.stop();
      kits.stop();
      for (const client of wss.clients) client.close(CLOSE_CODES.goingAway.code, 'gateway shutting down');
      // Background purchase workers stop taking new work; requests already in flight go on.
      purchases.stop();
      // 4. In-flight requests (purchases waiting for their write-back) finish, within the bound.
      drain.endStreams();
      const drained = await drain.idle(deadline - Date.now());
      if (!drained) log.warn({ inFlight: drain.inFlight }, 'drain timeout: closing the requests still in flight');
      await waitClosed(wss, Math.max(0, deadline - Date.now()));
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections();
      await closed;
      await metricsServer?.close();
      await feed.stop();
      await alertStream.stop();
      redis.disconnect();
      purchaseRedis.disconnect();
      await pool.end().catch(() => undefined);
      log.info({ drained }, 'gateway stopped');
    },
  };
}
