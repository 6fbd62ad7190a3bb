/**
 * Expected receipts, receiving and per-SKU backorder policies over HTTP (docs/incoming.md), for
 * the WMS/ERP that knows what is on its way and the back office that decides what may be sold
 * ahead of it:
 *
 *   PUT  /v1/receipts/:receiptId            create or update expected lines   scope receipts:write
 *   GET  /v1/receipts/:receiptId            the receipt's lines               scope receipts:write
 *   POST /v1/receipts/:receiptId/receive    units arrived: on hand rises, backorders convert
 *                                                                             scope receipts:write
 *   PUT  /v1/skus/:sku/backorder-policy     none | backorder (limit) | preorder (optional limit)
 *                                                                             scope backorder-policy:write
 *   GET  /v1/skus/:sku/backorder-policy                                       scope backorder-policy:write
 *
 * Identity comes from the credential (gateway/auth.ts); the body names no one. Answers: 200/201 ·
 * 400 invalid_json / invalid_body (`details.field`) · 401 · 403 · 404 unknown_sku /
 * unknown_location / unknown_receipt · 409 receipt_line_conflict · 413 · 503 unavailable. A
 * refusal changes nothing (each request is one Postgres transaction).
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { ForbiddenError, InvalidBodyError, UnauthorizedError, UnknownReceiptError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { validatePolicy, validateReceipt, validateReceiptId, validateReceive, type ReceiptsPort } from '../connectors/receipts.ts';
import { bearerToken, type Verifier } from './auth.ts';
import { jsonBody } from './body.ts';

export const RECEIPTS_SCOPE = 'receipts:write';
export const POLICY_SCOPE = 'backorder-policy:write';
export const MAX_RECEIPT_BODY_BYTES = 64 * 1024;

export function createReceiptRoutes(deps: { store: ReceiptsPort; verifier: Pick<Verifier, 'verify'>; logger: Logger }): Router {
  const log = deps.logger.child({ component: 'receipts-http' });
  const router = express.Router({ caseSensitive: true, strict: true });

  const requireScope = (scope: string) => async (req: Request, res: Response, next: NextFunction) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      throw new UnauthorizedError(`${req.method} ${req.path} needs a credential with scope ${scope}: Authorization: Bearer <API key or JWT>`, { headers: { 'WWW-Authenticate': 'Bearer' } });
    }
    const auth = await deps.verifier.verify(token);
    if (!auth.ok) throw new UnauthorizedError(`${auth.reason} (this route needs scope ${scope})`, { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    if (!auth.principal.scopes.has(scope)) {
      throw new ForbiddenError(`credential ${auth.principal.subject} lacks scope ${scope}`, { headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}"` } });
    }
    res.locals.subject = auth.principal.subject;
    next();
  };
  const body = jsonBody(MAX_RECEIPT_BODY_BYTES, 'a receipt body');
  const invalid = (v: { field: string; message: string }) => new InvalidBodyError(v.field ? `${v.field}: ${v.message}` : v.message, { details: { field: v.field } });

  router.put('/v1/receipts/:receiptId', requireScope(RECEIPTS_SCOPE), body, async (req, res) => {
    const v = validateReceipt(String(req.params.receiptId), req.body);
    if (!v.ok) throw invalid(v);
    const existed = (await deps.store.get(v.value.receiptId)) !== null;
    const receipt = await deps.store.upsert(v.value, `http:${String(res.locals.subject)}`);
    log.info({ receiptId: v.value.receiptId, lines: v.value.lines.length, subject: res.locals.subject }, 'expected receipt recorded');
    res.status(existed ? 200 : 201).json(receipt);
  });

  router.get('/v1/receipts/:receiptId', requireScope(RECEIPTS_SCOPE), async (req, res) => {
    const id = validateReceiptId(String(req.params.receiptId));
    if (!id.ok) throw invalid(id);
    const receipt = await deps.store.get(id.value);
    if (!receipt) throw new UnknownReceiptError(`no expected receipt ${id.value}`, { details: { receiptId: id.value } });
    res.json(receipt);
  });

  router.post('/v1/receipts/:receiptId/receive', requireScope(RECEIPTS_SCOPE), body, async (req, res) => {
    const v = validateReceive(String(req.params.receiptId), req.body);
    if (!v.ok) throw invalid(v);
    const out = await deps.store.receive(v.value, `http:${String(res.locals.subject)}`);
    log.info({ receiptId: v.value.receiptId, lines: v.value.lines.length, converted: out.converted.length, subject: res.locals.subject }, 'receipt received');
    res.json(out);
  });

  router.put('/v1/skus/:sku/backorder-policy', requireScope(POLICY_SCOPE), body, async (req, res) => {
    const v = validatePolicy(String(req.params.sku), req.body);
    if (!v.ok) throw invalid(v);
    const policy = await deps.store.setPolicy(v.value, `http:${String(res.locals.subject)}`);
    log.info({ sku: policy.sku, policy: policy.policy, limit: policy.limit, subject: res.locals.subject }, 'backorder policy set');
    res.json(policy);
  });

  router.get('/v1/skus/:sku/backorder-policy', requireScope(POLICY_SCOPE), async (req, res) => {
    const v = validatePolicy(String(req.params.sku), { policy: 'none' });
    if (!v.ok) throw invalid(v);
    res.json(await deps.store.getPolicy(v.value.sku));
  });
  return router;
}
