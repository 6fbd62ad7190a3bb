/**
 * HTTP for the purchase path. `POST /v1/purchases` is served straight from node:http, ahead of
 * express: it is the flash-sale hot path (tens of thousands of sold-out answers per second), and
 * express' router and middleware would cost more than the gate itself. The order routes are
 * ordinary express routes. Errors are the gateway's JSON shape `{error, message, details?}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Router } from 'express';
import express from 'express';
import type { Logger } from '../lib/logger.ts';
import { validatePurchase, validIdempotencyKey } from '../purchase/domain/request.ts';
import type { Outcome, PurchaseService } from '../purchase/service.ts';
import { discardRest, readBody } from './body.ts';
import type { GatewayMetrics } from './metrics.ts';

export const MAX_PURCHASE_BODY_BYTES = 16 * 1024;
const ROUTE = '/v1/purchases';

function send(res: ServerResponse, o: Outcome): void {
  const body = JSON.stringify(o.body);
  res.writeHead(o.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...o.headers });
  res.end(body);
}

function bad(status: number, code: string, message: string, details?: Record<string, unknown>): Outcome {
  return { status, body: { error: code, message, ...(details ? { details } : {}) } };
}

/** True when the request is the purchase route (the server then hands it to `handlePurchase`). */
export function isPurchaseRoute(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return url === ROUTE || url.startsWith(`${ROUTE}?`);
}

export function createPurchaseHandler(deps: { service: PurchaseService; metrics: GatewayMetrics; logger: Logger }) {
  const log = deps.logger.child({ component: 'purchase-http' });
  const { metrics } = deps;
  return function handlePurchase(req: IncomingMessage, res: ServerResponse): void {
    const end = metrics.httpDuration.startTimer({ route: ROUTE });
    const finish = (o: Outcome) => {
      if (!res.headersSent && !res.destroyed) send(res, o);
      metrics.httpRequests.inc({ route: ROUTE, status: String(o.status) });
      end();
    };
    if (req.method !== 'POST') {
      finish({ ...bad(405, 'method_not_allowed', `${req.method} is not allowed on ${ROUTE}; use POST`), headers: { Allow: 'POST' } });
      req.resume();
      return;
    }
    // The size limit holds while the body streams in (body.ts): a larger one is refused at once.
    void readBody(req, MAX_PURCHASE_BODY_BYTES).then((read) => {
      if (!read.ok && read.reason === 'aborted') return void res.destroy();
      if (!read.ok) {
        finish(bad(413, 'body_too_large', `a purchase body is at most ${MAX_PURCHASE_BODY_BYTES} bytes`, { field: 'body' }));
        return discardRest(req);
      }
      const key = req.headers['idempotency-key'];
      const idemKey = Array.isArray(key) ? key[0] : key;
      if (idemKey === undefined) return finish(bad(400, 'missing_idempotency_key', 'the Idempotency-Key header is required', { field: 'Idempotency-Key' }));
      if (!validIdempotencyKey(idemKey)) return finish(bad(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1 to 128 printable ASCII characters without spaces', { field: 'Idempotency-Key' }));
      let parsed: unknown;
      try {
        parsed = JSON.parse(read.body.toString('utf8'));
      } catch (err) {
        return finish(bad(400, 'invalid_json', `the body is not valid JSON: ${(err as Error).message}`, { field: 'body' }));
      }
      const v = validatePurchase(parsed);
      if (!v.ok) return finish(bad(400, 'invalid_body', `${v.field}: ${v.message}`, { field: v.field }));
      const address = req.socket.remoteAddress ?? 'unknown';
      deps.service.purchase(v.value, idemKey, address).then(finish, (err: unknown) => {
        log.error({ err: (err as Error).message }, 'purchase handler failed');
        finish(bad(500, 'internal_error', 'the gateway could not answer this request'));
      });
    }).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'purchase handler failed');
      finish(bad(500, 'internal_error', 'the gateway could not answer this request'));
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
    this.subscribed ??= this.service.waitingRoom.subscribe((f) => {
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
    const fate = await this.service.waitingRoom.getFate(sku, ticket);
    if (fate) this.send(res, fate);
  }

  private send(res: express.Response, fate: { status: number; body: Record<string, unknown> }): void {
    if (res.writableEnded) return;
    res.write(`event: fate\ndata: ${JSON.stringify({ status: fate.status, body: fate.body })}\n\n`);
    res.end();
  }
}

/** Order routes (GET /v1/orders/:orderId, POST .../confirm and .../cancel) and waiting-room tickets. */
export function createOrderRoutes(service: PurchaseService): Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  const reply = (res: express.Response, o: Outcome) => {
    if (o.headers) res.set(o.headers);
    res.status(o.status).json(o.body);
  };
  router.get('/v1/orders/:orderId', async (req, res) => reply(res, await service.getOrder(String(req.params.orderId))));
  router.post('/v1/orders/:orderId/confirm', async (req, res) => reply(res, await service.transition(String(req.params.orderId), 'confirmed')));
  router.post('/v1/orders/:orderId/cancel', async (req, res) => reply(res, await service.transition(String(req.params.orderId), 'cancelled')));
  const ticketOf = (raw: string): number | null => (/^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : null);
  const badTicket = (res: express.Response) => reply(res, { status: 400, body: { error: 'invalid_ticket', message: 'a ticket is a positive whole number', details: { field: 'ticket' } } });
  router.get('/v1/tickets/:sku/:ticket', async (req, res) => {
    const ticket = ticketOf(String(req.params.ticket));
    if (ticket === null) return badTicket(res);
    reply(res, await service.ticketState(String(req.params.sku), ticket));
  });
  const events = new TicketEvents(service);
  router.get('/v1/tickets/:sku/:ticket/events', async (req, res) => {
    const ticket = ticketOf(String(req.params.ticket));
    if (ticket === null) return badTicket(res);
    const state = await service.ticketState(String(req.params.sku), ticket);
    if (state.status !== 200) return reply(res, state);
    await events.watch(String(req.params.sku), ticket, res);
  });
  return router;
}
