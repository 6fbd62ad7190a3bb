/**
 * `GET /v1/movements`: the movement ledger (docs/ledger.md), for WMS/ERP systems and auditors.
 * Needs a credential with scope `movements:read` or the `wms` / `erp` grant (they see every
 * per-location figure already); the ledger names orders and credentials, so it is never public.
 *
 * Query: `sku`, `location`, `since` / `until` (ISO 8601 or epoch ms; recorded time, `until`
 * exclusive), `after` (the previous page's `next`), `limit` (1..1000, default 100).
 * Answers: 200 `{items, next}` · 400 invalid_query (`details.field`) · 401 · 403 · 503.
 */
import express, { type Request, type Router } from 'express';
import type pg from 'pg';
import { fromPgError } from '../lib/driver-errors.ts';
import { ForbiddenError, InvalidQueryError, UnauthorizedError, UnavailableError } from '../lib/errors.ts';
import { MAX_MOVEMENTS_PAGE, readMovements, type MovementQuery } from '../connectors/ledger.ts';
import { hasControlChars } from './limits.ts';
import { bearerToken, type Verifier } from './auth.ts';
import { RETRY_AFTER_S } from './http.ts';

export const MOVEMENTS_ROUTE = '/v1/movements';
export const MOVEMENTS_SCOPE = 'movements:read';
const READ_GRANTS = [MOVEMENTS_SCOPE, 'wms', 'erp'];
const FIELDS = new Set(['sku', 'location', 'since', 'until', 'after', 'limit']);

function single(req: Request, field: string): string | undefined {
  const v = req.query[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new InvalidQueryError(`query parameter ${field} must be given once, as a string`, { details: { field } });
  return v;
}

function text(req: Request, field: string, max: number): string | undefined {
  const v = single(req, field);
  if (v === undefined) return undefined;
  if (v.length < 1 || v.length > max || hasControlChars(v)) {
    throw new InvalidQueryError(`query parameter ${field} must be 1 to ${max} characters without control characters`, { details: { field } });
  }
  return v;
}

/** ISO 8601 or epoch milliseconds. */
function instant(req: Request, field: string): number | undefined {
  const v = single(req, field);
  if (v === undefined) return undefined;
  const n = /^\d{1,15}$/.test(v) ? Number(v) : /^\d{4}-\d{2}-\d{2}T/.test(v) ? Date.parse(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidQueryError(`query parameter ${field} must be an ISO 8601 time or epoch milliseconds`, { details: { field } });
  return n;
}

function whole(req: Request, field: string, min: number, max: number): number | undefined {
  const v = single(req, field);
  if (v === undefined) return undefined;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidQueryError(`query parameter ${field} must be a whole number from ${min} to ${max}`, { details: { field } });
  return n;
}

/** The query of a request, or invalid_query naming the first bad field. */
export function movementQuery(req: Request): MovementQuery {
  for (const k of Object.keys(req.query)) {
    if (!FIELDS.has(k)) throw new InvalidQueryError(`unknown query parameter ${k} (known: ${[...FIELDS].join(', ')})`, { details: { field: k } });
  }
  const q: MovementQuery = {
    sku: text(req, 'sku', 128),
    locationId: text(req, 'location', 64),
    since: instant(req, 'since'),
    until: instant(req, 'until'),
    after: whole(req, 'after', 0, Number.MAX_SAFE_INTEGER),
    limit: whole(req, 'limit', 1, MAX_MOVEMENTS_PAGE) ?? 100,
  };
  if (q.since !== undefined && q.until !== undefined && q.until < q.since) {
    throw new InvalidQueryError('query parameter until must not be before since', { details: { field: 'until' } });
  }
  return q;
}

export function createMovementRoutes(deps: { pool: pg.Pool; verifier: Pick<Verifier, 'verify'> }): Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  router.get(MOVEMENTS_ROUTE, async (req, res) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      throw new UnauthorizedError(`GET ${MOVEMENTS_ROUTE} needs a credential with scope ${MOVEMENTS_SCOPE} (or wms / erp)`, { headers: { 'WWW-Authenticate': 'Bearer' } });
    }
    const auth = await deps.verifier.verify(token);
    if (!auth.ok) throw new UnauthorizedError(auth.reason, { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    if (!READ_GRANTS.some((g) => auth.principal.scopes.has(g))) {
      throw new ForbiddenError(`credential ${auth.principal.subject} lacks scope ${MOVEMENTS_SCOPE}`, {
        headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${MOVEMENTS_SCOPE}"` },
      });
    }
    const q = movementQuery(req);
    let page: Awaited<ReturnType<typeof readMovements>>;
    try {
      page = await readMovements(deps.pool, q);
    } catch (err) {
      const e = fromPgError(err);
      if (e instanceof UnavailableError) throw new UnavailableError('the ledger is unavailable right now; retry shortly', { retryAfterS: RETRY_AFTER_S, cause: e });
      throw e;
    }
    res.json(page);
  });
  return router;
}
