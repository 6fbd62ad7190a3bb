/**
 * HTTP for the purchase path. `POST /v1/purchases` is served straight from node:http, ahead of
 * express: it is the flash-sale hot path (tens of thousands of sold-out answers per second), and
 * express' router and middleware would cost more than the gate itself. The order routes are
 * ordinary express routes. Errors are the gateway's JSON shape `{error, message, details?}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Router } from 'express';
import express from 'express';
import { errorResponse } from '../lib/error-response.ts';
import {
  BodyTooLargeError,
  errorFor,
  InternalError,
  isErrorCode,
  InvalidBodyError,
  InvalidIdempotencyKeyError,
  InvalidJsonError,
  InvalidTicketError,
  MethodNotAllowedError,
  MissingIdempotencyKeyError,
  UnknownTicketError,
} from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { EMPTY_KIT_CATALOG, expandKits, type KitSource } from '../lib/contracts/kits.ts';
import { MAX_QTY, validateChange, validateExtend, validatePurchase, validIdempotencyKey } from '../purchase/request.ts';
import type { Outcome, PurchaseService } from '../purchase/service.ts';
import { discardRest, jsonBody, readBody } from './body.ts';
import { bearerToken, type Verifier } from './auth.ts';
import { SECURITY_HEADERS } from './http.ts';
import { purchaseChannel, purchaseCustomer, resolveRequester, type ChannelDirectory, type Refusal, type Requester } from './domain/identity.ts';
import { counterBy, type GatewayMetrics } from './metrics.ts';

/** Who may buy and see orders (docs/security.md#credentials-who-may-do-what). */
export interface PurchaseIdentity {
  verifier: Pick<Verifier, 'verify'>;
  /** Development only (PURCHASE_ALLOW_ANONYMOUS): no credential buys as `anon:<customerId>`. */
  allowAnonymous: boolean;
  /** The sales channels as this gateway last loaded them (lib/channel-config.ts). */
  channels?: { readonly config: ChannelDirectory };
  /** The kit catalog as this gateway last loaded it (lib/kit-config.ts): kit lines are expanded into their components. */
  kits?: KitSource;
}

const NO_CHANNELS: ChannelDirectory = { channels: new Map() };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The verifier's answer for the request's credential; undefined when it presents none. */
async function credentialOf(req: IncomingMessage, identity: PurchaseIdentity) {
  const token = bearerToken(req.headers.authorization);
  if (token === undefined && req.headers.authorization === undefined) return undefined;
  return identity.verifier.verify(token);
}

/** An identity refusal (gateway/domain/identity.ts) as its catalog error's answer. */
function refusal(r: Refusal): Outcome {
  if (!isErrorCode(r.code)) return errorResponse(new InternalError(`identity refused with an unknown code ${r.code}: ${r.message}`));
  return errorResponse(
    errorFor(r.code, r.message, {
      ...(r.field ? { details: { field: r.field } } : {}),
      ...(r.code === 'unauthorized' ? { headers: { 'WWW-Authenticate': 'Bearer' } } : {}),
    }),
  );
}

export const MAX_PURCHASE_BODY_BYTES = 16 * 1024;
/** Bodies of POST /v1/orders/:id/extend and PATCH /v1/orders/:id. */
export const MAX_HOLD_BODY_BYTES = 16 * 1024;
const ROUTE = '/v1/purchases';

/**
 * The security headers every answer carries (gateway/http.ts), as a flat name/value list made
 * once. This route's answers pass them to `writeHead` with their own headers in one list, so
 * node writes them straight into the head: no `setHeader` per header per request, no headers
 * object (the server's dispatcher leaves them to this route: gateway/service.ts).
 */
const SECURITY_HEADER_LIST: readonly string[] = Object.entries(SECURITY_HEADERS).flat();

function send(res: ServerResponse, o: Outcome): void {
  const body = JSON.stringify(o.body);
  const headers: Array<string | number> = [...SECURITY_HEADER_LIST, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', Buffer.byteLength(body)];
  if (o.headers) for (const name in o.headers) headers.push(name, o.headers[name]!);
  res.writeHead(o.status, headers);
  res.end(body);
}

/** True when the request is the purchase route (the server then hands it to `handlePurchase`). */
export function isPurchaseRoute(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return url === ROUTE || url.startsWith(`${ROUTE}?`);
}

export function createPurchaseHandler(deps: { service: PurchaseService; metrics: GatewayMetrics; logger: Logger; identity: PurchaseIdentity }) {
  const log = deps.logger.child({ component: 'purchase-http' });
  const { identity, service } = deps;
  // The metric children of this route, bound once (prom-client hashes a labels object on every call).
  const duration = deps.metrics.httpDuration.labels({ route: ROUTE });
  const countStatus = counterBy(deps.metrics.httpRequests, 'status', { route: ROUTE });
  const failed = (err: unknown): Outcome => {
    log.error({ err: (err as Error).message }, 'purchase handler failed');
    return errorResponse(new InternalError((err as Error).message, { cause: err }));
  };

  /** The answer to a purchase whose body was read in full; undefined: the request was aborted. */
  async function answer(req: IncomingMessage, res: ServerResponse): Promise<Outcome | undefined> {
    // The size limit holds while the body streams in (body.ts): a larger one is refused at once.
    const read = await readBody(req, MAX_PURCHASE_BODY_BYTES);
    if (!read.ok && read.reason === 'aborted') {
      res.destroy();
      return undefined;
    }
    if (!read.ok) {
      discardRest(req);
      return errorResponse(new BodyTooLargeError(`a purchase body is at most ${MAX_PURCHASE_BODY_BYTES} bytes`, { details: { field: 'body' } }));
    }
    const idemKey = header(req, 'idempotency-key');
    if (idemKey === undefined) return errorResponse(new MissingIdempotencyKeyError('the Idempotency-Key header is required', { details: { field: 'Idempotency-Key' } }));
    if (!validIdempotencyKey(idemKey)) {
      return errorResponse(new InvalidIdempotencyKeyError('Idempotency-Key must be 1 to 128 printable ASCII characters without spaces', { details: { field: 'Idempotency-Key' } }));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(read.body.toString('utf8'));
    } catch (err) {
      return errorResponse(new InvalidJsonError(`the body is not valid JSON: ${(err as Error).message}`, { details: { field: 'body' } }));
    }
    const v = validatePurchase(parsed);
    if (!v.ok) return errorResponse(new InvalidBodyError(`${v.field}: ${v.message}`, { details: { field: v.field } }));
    const address = req.socket.remoteAddress ?? 'unknown';
    const body = v.value;
    // Kit lines become their components (docs/kits.md): the gate reserves those, atomically.
    const expanded = expandKits(body.items, identity.kits?.config ?? EMPTY_KIT_CATALOG, MAX_QTY);
    if (!expanded.ok) return errorResponse(new InvalidBodyError(`${expanded.field}: ${expanded.message}`, { details: { field: expanded.field } }));
    const verified = await credentialOf(req, identity);
    const who = purchaseCustomer(verified, { header: header(req, 'x-customer-id'), body: body.customerId }, identity.allowAnonymous);
    if (!who.ok) return refusal(who);
    const principal = verified?.ok ? verified.principal : undefined;
    const sold = purchaseChannel(principal, body.channel, identity.channels?.config ?? NO_CHANNELS, identity.allowAnonymous);
    if (!sold.ok) return refusal(sold);
    const request = { customerId: who.customerId, items: expanded.items, channel: sold.channel, ...(expanded.kits.length > 0 ? { kits: expanded.kits } : {}) };
    return service.purchase(request, idemKey, address);
  }

  function finish(res: ServerResponse, o: Outcome, started: number): void {
    if (!res.headersSent && !res.destroyed) send(res, o);
    countStatus(String(o.status));
    duration.observe((performance.now() - started) / 1000);
  }

  return function handlePurchase(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    if (req.method !== 'POST') {
      finish(res, errorResponse(new MethodNotAllowedError(`${req.method} is not allowed on ${ROUTE}; use POST`, { headers: { Allow: 'POST' } })), started);
      req.resume();
      return;
    }
    answer(req, res)
      .catch(failed)
      .then((o) => {
        if (o) finish(res, o, started);
      })
      .catch((err: unknown) => {
        // Writing the answer failed (nothing a client sends should get here): never a crash.
        log.error({ err: (err as Error).message }, 'purchase answer could not be written');
        res.destroy();
      });
  };
}

/**
 * Server-sent events for waiting-room tickets: one `fate` event when the ticket is decided (at
 * once when it already is), comments every 15 s to keep proxies from closing the stream.
 */
class TicketEvents {
  private readonly watchers = new Map<string, Set<express.Response>>();
  private subscribed: Promise<void> | undefined;

  constructor(private readonly service: PurchaseService) {}

  async watch(sku: string, ticket: number, res: express.Response): Promise<void> {
    // Keyed by SKU and ticket number: only a stream the route opened for the ticket's owner is here.
    this.subscribed ??= this.service.subscribeFates((f) => {
      const set = this.watchers.get(`${f.sku}\u0000${f.ticket}`);
      for (const r of set ?? []) this.send(r, f);
    });
    await this.subscribed;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write(': waiting\n\n');
    const id = `${sku}\u0000${ticket}`;
    const set = this.watchers.get(id) ?? new Set();
    set.add(res);
    this.watchers.set(id, set);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(keepAlive);
      set.delete(res);
      if (set.size === 0) this.watchers.delete(id);
    });
    // Decided before the stream opened (or while subscribing): answer from the stored fate.
    const fate = await this.service.fate(sku, ticket);
    if (fate) this.send(res, fate);
  }

  private send(res: express.Response, fate: { status: number; body: Record<string, unknown> }): void {
    if (res.writableEnded) return;
    res.write(`event: fate\ndata: ${JSON.stringify({ status: fate.status, body: fate.body })}\n\n`);
    res.end();
  }
}

/**
 * Order routes (GET and PATCH /v1/orders/:orderId, POST .../confirm, .../cancel and .../extend) and waiting-room tickets.
 * Every route needs a credential (or the development anonymous mode with X-Customer-Id); an order
 * or ticket the caller may not see answers 404 exactly like one that does not exist.
 */
export function createOrderRoutes(service: PurchaseService, identity: PurchaseIdentity): Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  const reply = (res: express.Response, o: Outcome) => {
    if (o.headers) res.set(o.headers);
    res.status(o.status).json(o.body);
  };
  /** The caller, or the 401/400/403 answer already sent. */
  const caller = async (req: express.Request, res: express.Response): Promise<Requester | undefined> => {
    const r = resolveRequester(await credentialOf(req, identity), { header: header(req, 'x-customer-id') }, identity.allowAnonymous);
    if (r.ok) return r.requester;
    reply(res, refusal(r));
    return undefined;
  };
  router.get('/v1/orders/:orderId', async (req, res) => {
    const who = await caller(req, res);
    if (who) reply(res, await service.getOrder(String(req.params.orderId), who));
  });
  router.post('/v1/orders/:orderId/confirm', async (req, res) => {
    const who = await caller(req, res);
    if (who) reply(res, await service.transition(String(req.params.orderId), 'confirmed', who));
  });
  router.post('/v1/orders/:orderId/cancel', async (req, res) => {
    const who = await caller(req, res);
    if (who) reply(res, await service.transition(String(req.params.orderId), 'cancelled', who));
  });
  // The hold lifecycle (docs/purchase-path.md, "Hold lifecycle"); releasing a hold early is the cancel above.
  const holdBody = jsonBody(MAX_HOLD_BODY_BYTES, 'a hold lifecycle body');
  const invalid = (v: { field: string; message: string }) => errorResponse(new InvalidBodyError(`${v.field}: ${v.message}`, { details: { field: v.field } }));
  router.post('/v1/orders/:orderId/extend', holdBody, async (req, res) => {
    const who = await caller(req, res);
    if (!who) return;
    const v = validateExtend(req.body);
    reply(res, v.ok ? await service.extend(String(req.params.orderId), v.value.seconds, who) : invalid(v));
  });
  router.patch('/v1/orders/:orderId', holdBody, async (req, res) => {
    const who = await caller(req, res);
    if (!who) return;
    const v = validateChange(req.body);
    reply(res, v.ok ? await service.changeHold(String(req.params.orderId), v.value.items, who, req.socket.remoteAddress ?? 'unknown') : invalid(v));
  });
  const REF_RE = /^[1-9]\d{0,15}-[A-Za-z0-9_-]{22}$/;
  /** The ticket number behind the URL's reference, or the answer already sent. */
  const ticketOf = async (req: express.Request, res: express.Response): Promise<{ sku: string; ticket: number } | undefined> => {
    const who = await caller(req, res);
    if (!who) return undefined;
    const sku = String(req.params.sku);
    const ref = String(req.params.ticket);
    if (!REF_RE.test(ref)) {
      reply(res, errorResponse(new InvalidTicketError('a ticket reference is the fate URL a 202 answer gave: <number>-<22 characters>', { details: { field: 'ticket' } })));
      return undefined;
    }
    const ticket = await service.openTicket(sku, ref, who);
    if (ticket === null) {
      reply(res, errorResponse(new UnknownTicketError(`no ticket ${ref} for SKU ${sku}`, { details: { sku, ticket: ref } })));
      return undefined;
    }
    return { sku, ticket };
  };
  router.get('/v1/tickets/:sku/:ticket', async (req, res) => {
    const t = await ticketOf(req, res);
    if (t) reply(res, await service.ticketState(t.sku, t.ticket));
  });
  const events = new TicketEvents(service);
  router.get('/v1/tickets/:sku/:ticket/events', async (req, res) => {
    const t = await ticketOf(req, res);
    if (!t) return;
    const state = await service.ticketState(t.sku, t.ticket);
    if (state.status !== 200) return reply(res, state);
    await events.watch(t.sku, t.ticket, res);
  });
  return router;
}
