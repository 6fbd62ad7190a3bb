import { describe, expect, it } from 'vitest';
import { CLOSE_CODES as CLOSE } from './contracts/protocol.ts';
import {
  catalogEntry,
  ConfigError,
  ERROR_CATALOG,
  errorFor,
  InvalidMessageError,
  isErrorCode,
  isRetriable,
  PlatformError,
  SchemaError,
  SoldOutError,
  TransientError,
  UnavailableError,
  type ErrorCode,
} from './errors.ts';

const codes = Object.keys(ERROR_CATALOG) as ErrorCode[];

describe('error catalog', () => {
  it('defines each code once, in snake_case, with a summary', () => {
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(ERROR_CATALOG[code].summary.length).toBeGreaterThan(10);
    }
  });

  it('gives every HTTP status a 4xx or 5xx, retriable only where waiting can help', () => {
    for (const code of codes) {
      const e = catalogEntry(code);
      if (e.status === undefined) continue;
      expect(e.status, code).toBeGreaterThanOrEqual(400);
      expect(e.status, code).toBeLessThan(600);
      // Every 503 means "a dependency or this instance, not your request": retry.
      if (e.status === 503) expect(e.retriable, code).toBe(true);
      // A 4xx other than "slow down / try shortly" is the request's fault: retrying repeats it.
      if (e.status >= 400 && e.status < 500 && e.status !== 429 && code !== 'idempotency_in_progress') expect(e.retriable, code).toBe(false);
    }
    expect(ERROR_CATALOG.rate_limited.status).toBe(429);
    expect(ERROR_CATALOG.body_too_large.status).toBe(413);
    expect(ERROR_CATALOG.idempotency_key_reused.status).toBe(422);
  });

  it('uses the WebSocket close codes of the protocol (lib/contracts/protocol.ts)', () => {
    expect(ERROR_CATALOG.unauthorized.closeCode).toBe(CLOSE.unauthorized.code);
    expect(ERROR_CATALOG.unknown_channel.closeCode).toBe(CLOSE.unknownChannel.code);
    expect(ERROR_CATALOG.token_expired.closeCode).toBe(CLOSE.tokenExpired.code);
    expect(ERROR_CATALOG.internal_error.closeCode).toBe(CLOSE.internalError.code);
    // A close the client should not reconnect after is one whose error retrying cannot fix.
    expect(CLOSE.unauthorized.reconnect).toBe(ERROR_CATALOG.unauthorized.retriable);
    expect(CLOSE.tokenExpired.reconnect).toBe(ERROR_CATALOG.token_expired.retriable);
    const known = new Set<number>(Object.values(CLOSE).map((c: { code: number }) => c.code));
    for (const code of codes) {
      const e = catalogEntry(code);
      if (e.closeCode !== undefined) expect(known.has(e.closeCode), code).toBe(true);
    }
  });

  it('has a class for every code whose code, status and retriable come from the catalog', () => {
    for (const code of codes) {
      const err = errorFor(code, 'm', { details: { variable: 'X' } });
      expect(err, code).toBeInstanceOf(PlatformError);
      expect(err.code).toBe(code);
      expect(err.retriable).toBe(ERROR_CATALOG[code].retriable);
      expect(err.httpStatus).toBe(catalogEntry(code).status);
      expect(err.closeCode).toBe(catalogEntry(code).closeCode);
      expect(err.name).not.toBe('Error');
    }
    expect(errorFor('config_invalid', 'bad', { details: { variable: 'PG_URL' } })).toBeInstanceOf(ConfigError);
  });

  it('keeps message, details, cause and the retry hint', () => {
    const cause = new Error('socket');
    const e = new SoldOutError('none left', { details: { sku: 'A' }, cause, retryAfterS: 3 });
    expect(e.message).toBe('none left');
    expect(e.name).toBe('SoldOutError');
    expect(e.details).toEqual({ sku: 'A' });
    expect(e.cause).toBe(cause);
    expect(e.retryAfterS).toBe(3);
  });

  it('a poison message is an InvalidMessageError and (for code that dead-letters SchemaErrors) a SchemaError', () => {
    const e = new InvalidMessageError('not Avro');
    expect(e.code).toBe('invalid_message');
    expect(e.retriable).toBe(false);
    expect(e).toBeInstanceOf(SchemaError);
    expect(new SchemaError('x').code).toBe('schema_invalid');
  });

  it('isRetriable: catalog errors by their flag, raw socket errors by code', () => {
    expect(isRetriable(new TransientError('t'))).toBe(true);
    expect(isRetriable(new UnavailableError('u'))).toBe(true);
    expect(isRetriable(new SoldOutError('s'))).toBe(false);
    expect(isRetriable(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetriable(new Error('Connection terminated'))).toBe(false);
    expect(isRetriable(null)).toBe(false);
  });

  it('isErrorCode tells catalog codes from other strings', () => {
    expect(isErrorCode('sold_out')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('nope')).toBe(false);
  });
});

describe('codes that arrive as data keep their statuses', () => {
  it('identity refusals (gateway/domain/identity.ts) are answered with the catalog status of their code', async () => {
    const { purchaseCustomer, resolveRequester } = await import('../gateway/domain/identity.ts');
    const service = { ok: true as const, principal: { kind: 'service' as const, subject: 'svc', scopes: new Set<string>(), expiresAt: undefined, via: 'api_key' as const } };
    const refusals = [
      resolveRequester({ ok: false, reason: 'invalid token' }, { header: undefined }, false),
      resolveRequester(undefined, { header: undefined }, false),
      resolveRequester(undefined, { header: 'a', body: 'b' }, true),
      resolveRequester(service, { header: 'someone' }, false),
      purchaseCustomer(service, { header: undefined, body: undefined }, false),
      purchaseCustomer({ ...service, principal: { ...service.principal, scopes: new Set(['purchase:act-for']) } }, { header: undefined, body: undefined }, false),
    ];
    expect(refusals.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['unauthorized', 'unauthorized', 'invalid_customer', 'forbidden', 'forbidden', 'missing_customer']);
    expect(refusals.map((r) => (r.ok ? 0 : catalogEntry(r.code as ErrorCode).status))).toEqual([401, 401, 400, 403, 403, 400]);
  });

  it('adjustment refusals: an unknown name is a 404, a forbidden stock state a 409', () => {
    const refusals = ['unknown_sku', 'unknown_location', 'stock_changed', 'negative_on_hand', 'below_reserved', 'on_hand_overflow', 'adjustment_id_conflict'] as const;
    expect(refusals.map((c) => errorFor(c, 'm').httpStatus)).toEqual([404, 404, 409, 409, 409, 409, 409]);
  });
});

describe('docs/gateway.md#errors', () => {
  it('holds the table generated from the catalog (npx tsx lib/errors-doc.ts)', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { errorsTable } = await import('./errors-doc.ts');
    const doc = fs.readFileSync(path.join(import.meta.dirname, '..', 'docs', 'gateway.md'), 'utf8');
    expect(doc).toContain(errorsTable());
  });
});

describe('stack traces', () => {
  it('are captured by default and not with stack: false (refusals that are only answers)', () => {
    const limit = Error.stackTraceLimit;
    expect(new SoldOutError('sold out').stack).toMatch(/\n\s+at /);
    const quiet = new SoldOutError('sold out', { stack: false, details: { sku: 'A' } });
    expect(quiet.stack).not.toMatch(/\n\s+at /);
    expect(quiet).toMatchObject({ code: 'sold_out', message: 'sold out', details: { sku: 'A' } });
    expect(Error.stackTraceLimit).toBe(limit);
  });
});
