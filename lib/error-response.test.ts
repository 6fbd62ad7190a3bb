import { describe, expect, it } from 'vitest';
import { errorResponse, INTERNAL_ERROR_MESSAGE } from './error-response.ts';
import {
  BodyTooLargeError,
  ContentionError,
  IdempotencyKeyReusedError,
  InternalError,
  InvalidDataError,
  MethodNotAllowedError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
} from './errors.ts';

describe('errorResponse', () => {
  it('answers a catalog error with its status and {error, message, details}', () => {
    expect(errorResponse(new IdempotencyKeyReusedError('used', { details: { field: 'Idempotency-Key' } }))).toEqual({
      status: 422,
      body: { error: 'idempotency_key_reused', message: 'used', details: { field: 'Idempotency-Key' } },
    });
    expect(errorResponse(new BodyTooLargeError('big'))).toEqual({ status: 413, body: { error: 'body_too_large', message: 'big' } });
  });

  it('sends Retry-After from the retry hint and the error\'s own headers', () => {
    expect(errorResponse(new RateLimitedError('slow down', { retryAfterS: 2 })).headers).toEqual({ 'Retry-After': '2' });
    expect(errorResponse(new UnavailableError('down', { retryAfterS: 1 }))).toMatchObject({ status: 503, headers: { 'Retry-After': '1' } });
    expect(errorResponse(new UnavailableError('down')).headers).toBeUndefined();
    expect(errorResponse(new UnauthorizedError('who?', { headers: { 'WWW-Authenticate': 'Bearer' } }))).toMatchObject({ status: 401, headers: { 'WWW-Authenticate': 'Bearer' } });
    expect(errorResponse(new MethodNotAllowedError('POST only', { headers: { Allow: 'POST' } })).headers).toEqual({ Allow: 'POST' });
  });

  it('never shows an internal error\'s message: a bare 500', () => {
    const bare = { status: 500, body: { error: 'internal_error', message: INTERNAL_ERROR_MESSAGE } };
    expect(errorResponse(new Error('secret stack detail'))).toEqual(bare);
    expect(errorResponse(new InternalError('pg said something'))).toEqual(bare);
    expect(errorResponse(new InvalidDataError('value too long', { sqlState: '22001' }))).toEqual(bare);
    expect(errorResponse(new ContentionError('deadlock', { sqlState: '40P01' }))).toEqual(bare);
    expect(errorResponse('a string')).toEqual(bare);
  });

  it('keeps the 4xx of a foreign error (express, parsers) as bad_request', () => {
    const e = Object.assign(new Error('URI malformed'), { status: 400 });
    expect(errorResponse(e)).toEqual({ status: 400, body: { error: 'bad_request', message: 'URI malformed' } });
    expect(errorResponse(Object.assign(new Error('x'), { statusCode: 415 })).status).toBe(415);
    expect(errorResponse(Object.assign(new Error('x'), { status: 502 })).status).toBe(500);
  });
});
