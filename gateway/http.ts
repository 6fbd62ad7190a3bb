/**
 * The gateway's HTTP API (express): stock reads served from the Redis views, health, readiness,
 * the OpenAPI document, the storefront demo page and the browser build of the SDK.
 * Every error is JSON `{error, message, details?}` with a stable `error` code.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../lib/config.ts';
import { fromRedisError } from '../lib/driver-errors.ts';
import { errorResponse } from '../lib/error-response.ts';
import {
  BadRequestError,
  InvalidQueryError,
  InvalidSkuError,
  NotFoundError,
  PlatformError,
  TooManySkusError,
  UnauthorizedError,
  UnavailableError,
  UnknownSalesChannelError,
  UnknownSkuError,
} from '../lib/errors.ts';
import { CHANNEL_ID } from '../lib/contracts/channels.ts';
import type { KitCatalog } from '../lib/contracts/kits.ts';
import type { Logger } from '../lib/logger.ts';
import type { StockLevel } from '../schemas/generated/avro-types.ts';
import { readSummaries, type StockViews } from './adapters/stock-reader.ts';
import { hasControlChars } from './limits.ts';
import { bearerToken, type Verifier } from './auth.ts';
import type { GatewayMetrics } from './metrics.ts';

export const MAX_BATCH_SKUS = 100;

/** Grants that may see per-location figures over HTTP: the WebSocket's wms/erp channels, or the scope. */
const LOCATION_GRANTS = ['wms', 'erp', 'stock:read-locations'];

/**
 * A SKU's state as the API answers it. With `channel` (`?channel=`), `available` is that sales
 * channel's figure and the body names the channel (docs/channels.md).
 */
function stockBody(s: StockLevel, full: boolean, channel?: string, kits?: KitCatalog) {
  const available = channel === undefined ? s.available : (s.channels?.[channel] ?? 0);
  const kit = kits?.kits.get(s.sku);
  // A kit names its components (docs/kits.md): its figures are derived from theirs.
  const named = { ...(channel === undefined ? {} : { channel }), ...(kit ? { kit: { components: kit.components } } : {}) };
  if (!full) return { sku: s.sku, available, version: s.version, deleted: s.deleted, commitTs: s.commitTs, committedAt: new Date(s.commitTs).toISOString(), ...named, ...incomingBody(s, false) };
  const { channels, incoming, ...rest } = s;
  return { ...rest, available, ...named, ...(channels ? { channels } : {}), committedAt: new Date(s.commitTs).toISOString(), ...incomingBody({ incoming }, true) };
}

/**
 * Incoming stock on a stock read (docs/incoming.md), as the WebSocket items carry it: absent for
 * a SKU that expects nothing, has no backorders and sells on hand only.
 */
function incomingBody(s: Pick<StockLevel, 'incoming'>, full: boolean) {
  const i = s.incoming;
  if (!i) return {};
  return {
    incoming: i.incoming,
    nextEta: i.nextEta === null ? null : new Date(i.nextEta).toISOString(),
    backorderable: i.backorderable,
    ...(full ? { backordered: i.backordered, backorderPolicy: i.policy } : {}),
  };
}

/** The `?channel=` of a stock read: absent, or a sales channel this gateway knows (else 400 / 404). */
function channelQuery(req: Request, views: StockViews): string | undefined {
  const raw = req.query.channel;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !CHANNEL_ID.test(raw)) {
    throw new InvalidQueryError('query parameter channel must be a sales channel id (a-z, 0-9, _ . -, at most 64)', { details: { field: 'channel' } });
  }
  if (!views.channels?.config.channels.has(raw)) throw new UnknownSalesChannelError(`no sales channel ${JSON.stringify(raw)}`, { details: { channel: raw } });
  return raw;
}

function checkSku(sku: string): void {
  if (sku.length < 1 || sku.length > 128) throw new InvalidSkuError('a SKU is 1 to 128 characters', { details: { sku } });
  if (hasControlChars(sku)) throw new InvalidSkuError('a SKU has no control characters', { details: { sku } });
}

/** Seconds a client should wait before retrying when a dependency is down. */
export const RETRY_AFTER_S = 1;

/**
 * Security headers on every answer of the gateway's HTTP port (API and demo page): no sniffing,
 * no framing, no referrer, and a content security policy allowing only the page's own scripts,
 * styles and connections (fetch and the WebSocket on the same host).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
});

/**
 * Reads the views; when Redis does not answer, the request is refused with 503 and Retry-After
 * (a dependency is down: try again), never a 500.
 */
async function readOr503(views: StockViews, skus: string[]): ReturnType<typeof readSummaries> {
  try {
    return await readSummaries(views, skus);
  } catch (err) {
    throw new UnavailableError('stock data is unavailable right now; retry shortly', { details: { dependency: 'redis' }, retryAfterS: RETRY_AFTER_S, cause: fromRedisError(err) });
  }
}

export function createHttpApp(deps: {
  views: StockViews;
  metrics: GatewayMetrics;
  ready: () => { ready: boolean; checks: Record<string, boolean> };
  sdkBundle: () => Promise<string>;
  logger: Logger;
  /** More API routes (the order routes of the purchase path). */
  routes?: Router;
  /** Stock reads show per-location figures only to credentials with wms, erp or stock:read-locations. */
  verifier?: Pick<Verifier, 'verify'>;
}) {
  const app = express();
  app.disable('x-powered-by');
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const log = deps.logger.child({ component: 'http' });
  const { metrics } = deps;

  app.use((req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      metrics.httpRequests.inc({ route, status: String(res.statusCode) });
      end({ route });
    });
    next();
  });

  /**
   * Public availability for everyone, like the storefront channel; on hand, reserved and the
   * per-location figures only for a credential allowed them (a bad credential is a 401).
   */
  const fullView = async (req: Request): Promise<boolean> => {
    if (req.headers.authorization === undefined || !deps.verifier) return false;
    const v = await deps.verifier.verify(bearerToken(req.headers.authorization));
    if (!v.ok) throw new UnauthorizedError(v.reason, { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    return LOCATION_GRANTS.some((g) => v.principal.scopes.has(g));
  };

  app.get('/v1/stock/:sku', async (req, res) => {
    const sku = String(req.params.sku);
    checkSku(sku);
    const channel = channelQuery(req, deps.views);
    const full = await fullView(req);
    const { summaries } = await readOr503(deps.views, [sku]);
    const s = summaries[0];
    if (!s) throw new UnknownSkuError(`no stock is known for SKU ${sku}`, { details: { sku } });
    res.json(stockBody(s, full, channel, deps.views.kits?.config));
  });

  app.get('/v1/stock', async (req, res) => {
    const raw = req.query.skus;
    const skus = typeof raw === 'string' ? [...new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))] : [];
    if (skus.length === 0) {
      throw new InvalidQueryError('query parameter skus is required: a comma-separated list of SKUs', { details: { field: 'skus' } });
    }
    if (skus.length > MAX_BATCH_SKUS) throw new TooManySkusError(`at most ${MAX_BATCH_SKUS} SKUs per request`, { details: { count: skus.length } });
    skus.forEach(checkSku);
    const channel = channelQuery(req, deps.views);
    const full = await fullView(req);
    const { summaries, unknown } = await readOr503(deps.views, skus);
    res.json({ items: summaries.map((s) => stockBody(s, full, channel, deps.views.kits?.config)), unknown });
  });

  // Path parameters (order ids, ticket SKUs, ...) never hold control characters: refused here,
  // before any route looks them up (the stock routes above answer invalid_sku themselves).
  app.use((req, _res, next) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(req.path);
    } catch {
      return next(new BadRequestError('the path is not valid percent-encoding'));
    }
    if (hasControlChars(decoded)) return next(new BadRequestError('the path has control characters'));
    next();
  });

  if (deps.routes) app.use(deps.routes);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    const r = deps.ready();
    if (!r.ready) res.set('Retry-After', String(RETRY_AFTER_S));
    res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'not_ready', checks: r.checks });
  });

  // /metrics is not served here: it has its own listener (GATEWAY_METRICS_PORT, loopback).

  const openapiText = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'openapi.yaml'), 'utf8');
  const openapiJson = YAML.parse(openapiText) as unknown;
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(openapiText);
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openapiJson);
  });

  app.get('/sdk.js', async (_req, res) => {
    res.type('application/javascript').send(await deps.sdkBundle());
  });
  app.use(express.static(path.join(PROJECT_ROOT, 'gateway', 'public'), { index: 'index.html', maxAge: 0 }));

  app.use((req, _res, next) => next(new NotFoundError(`no route ${req.method} ${req.path}`)));

  // Every error of the express routes is answered here, through the one mapping (lib/error-response.ts).
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const answer = errorResponse(err);
    if (answer.status === 500) {
      log.error({ err: (err as Error)?.message, stack: (err as Error)?.stack, method: req.method, path: req.path }, 'request failed');
    } else if (answer.status >= 500 && err instanceof PlatformError) {
      log.warn({ err: err.message, cause: (err.cause as Error | undefined)?.message, method: req.method, path: req.path }, 'request refused: dependency unavailable');
    }
    if (answer.headers) res.set(answer.headers);
    res.status(answer.status).json(answer.body);
  });
  return app;
}
