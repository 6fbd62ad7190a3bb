/**
 * `POST /v1/adjustments`: the HTTP twin of the `stock.adjustments` topic, for WMS/ERP systems that
 * would rather call than produce. The body is the Avro `StockAdjustment` record as JSON; it is
 * validated and applied by the same code as the Kafka consumer (connectors/inbound: domain rules,
 * one Postgres transaction recording the adjustment id), so an adjustment sent both ways applies
 * once. Needs a credential (`Authorization: Bearer <API key or JWT>`, gateway/auth.ts) with scope
 * `adjustments:write` (docs/security.md#credentials-who-may-do-what).
 *
 * Answers (docs/openapi.yaml, docs/connectors.md): 201 applied · 200 duplicate (same id, same
 * payload: the first outcome again) · 400 invalid_json / invalid_body (`details.field`) · 401
 * unauthorized · 403 forbidden (a valid credential without the scope) · 404 unknown_sku /
 * unknown_location · 409 stock_changed (compare-and-set: `expectedOnHand` / `expectedVersion` no
 * longer hold; `details` carry the current onHand, reserved and version and what was expected),
 * negative_on_hand, below_reserved, on_hand_overflow, adjustment_id_conflict · 413 body_too_large · 503 unavailable (nothing was
 * applied, or it was and a retry with the same body answers 200).
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import {
  errorFor,
  errorMessage,
  ForbiddenError,
  InvalidBodyError,
  UnauthorizedError,
  UnavailableError,
} from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { validateAdjustment, type AdjustmentApplier, type ApplyOutcome } from '../connectors/adjustments.ts';
import { jsonBody } from './body.ts';
import { bearerToken, type Verifier } from './auth.ts';
import { RETRY_AFTER_S } from './http.ts';

export const ADJUSTMENTS_ROUTE = '/v1/adjustments';
export const MAX_ADJUSTMENT_BODY_BYTES = 16 * 1024;

/** The scope a credential needs to write stock (docs/security.md#credentials-who-may-do-what). */
export const ADJUSTMENTS_SCOPE = 'adjustments:write';

/** The body of an applied or duplicate outcome. */
export function outcomeBody(o: Extract<ApplyOutcome, { outcome: 'applied' | 'duplicate' }>) {
  return {
    status: o.outcome,
    adjustmentId: o.adjustment.adjustmentId,
    sku: o.adjustment.sku,
    kind: o.adjustment.kind,
    version: o.result.version,
    locations: o.result.locations,
  };
}


export function createAdjustmentRoutes(deps: { store: AdjustmentApplier; verifier: Pick<Verifier, 'verify'>; logger: Logger }): Router {
  const log = deps.logger.child({ component: 'adjustments-http' });
  const router = express.Router({ caseSensitive: true, strict: true });

  const authenticate = async (req: Request, res: Response, next: NextFunction) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      throw new UnauthorizedError(`POST /v1/adjustments needs a credential with scope ${ADJUSTMENTS_SCOPE}: Authorization: Bearer <API key or JWT>`, {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    const auth = await deps.verifier.verify(token);
    if (!auth.ok) {
      throw new UnauthorizedError(`${auth.reason} (adjustments need scope ${ADJUSTMENTS_SCOPE})`, { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    }
    if (!auth.principal.scopes.has(ADJUSTMENTS_SCOPE)) {
      throw new ForbiddenError(`credential ${auth.principal.subject} lacks scope ${ADJUSTMENTS_SCOPE}`, {
        headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${ADJUSTMENTS_SCOPE}"` },
      });
    }
    res.locals.subject = auth.principal.subject;
    next();
  };

  const body = jsonBody(MAX_ADJUSTMENT_BODY_BYTES, 'an adjustment body');

  router.post(ADJUSTMENTS_ROUTE, authenticate, body, async (req, res) => {
    const v = validateAdjustment(req.body, { strict: true });
    if (!v.ok) throw new InvalidBodyError(`${v.field}: ${v.message}`, { details: { field: v.field } });
    let outcome: ApplyOutcome;
    try {
      [outcome] = (await deps.store.apply([{ adjustment: v.value, via: `http:${String(res.locals.subject)}` }])) as [ApplyOutcome];
    } catch (err) {
      // The store classified its Postgres errors (lib/driver-errors.ts): only "Postgres is not
      // there now" is a 503; anything else (data refused, contention past its retries) is a 500.
      if (!(err instanceof UnavailableError)) throw err;
      log.warn({ err: errorMessage(err), adjustmentId: v.value.adjustmentId }, 'adjustment could not be applied now');
      throw new UnavailableError('the adjustment could not be applied now; retry with the same body (an adjustment id applies once)', { retryAfterS: RETRY_AFTER_S, cause: err });
    }
    if (outcome.outcome === 'refused') {
      throw errorFor(outcome.code, outcome.message, { details: { ...outcome.details, adjustmentId: outcome.adjustment.adjustmentId } });
    }
    if (outcome.outcome === 'applied') {
      log.info({ adjustmentId: v.value.adjustmentId, sku: v.value.sku, kind: v.value.kind, version: outcome.result.version, subject: res.locals.subject }, 'adjustment applied');
    }
    res.status(outcome.outcome === 'applied' ? 201 : 200).json(outcomeBody(outcome));
  });
  return router;
}
