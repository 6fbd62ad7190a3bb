import { ReplyError } from 'ioredis';
import { MaxRetriesPerRequestError } from 'ioredis/built/errors/index.js';
import { KafkaJSConnectionError, KafkaJSNonRetriableError } from 'kafkajs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { fromKafkaError, fromPgError, fromRedisError, fromRegistryError } from './driver-errors.ts';
import { ContentionError, InternalError, InvalidDataError, isRetriable, SchemaError, SoldOutError, TransientError, UnavailableError } from './errors.ts';

/** A pg error as the driver builds it from a server ErrorResponse. */
function pgError(code: string, message = `pg ${code}`): pg.DatabaseError {
  const e = new pg.DatabaseError(message, message.length, 'error');
  e.code = code;
  return e;
}

function sysError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

describe('fromPgError', () => {
  it.each([
    ['22001', InvalidDataError], // string too long
    ['22P02', InvalidDataError], // invalid text representation
    ['23514', InvalidDataError], // check violation (the write-back's guard)
    ['23505', InvalidDataError], // unique violation, unless the adapter says it is contention
    ['40001', ContentionError],
    ['40P01', ContentionError],
    ['08006', UnavailableError], // connection failure
    ['53300', UnavailableError], // too many connections
    ['57P01', UnavailableError], // admin shutdown
    ['57P03', UnavailableError], // cannot connect now (starting up)
    ['42P01', InternalError], // undefined table: a bug, retrying repeats it
  ])('SQLSTATE %s is a %s', (code, cls) => {
    const e = fromPgError(pgError(code));
    expect(e).toBeInstanceOf(cls);
    expect(e.message).toBe(`pg ${code}`);
    expect((e.cause as pg.DatabaseError).code).toBe(code);
  });

  it('retriable is decided here: unavailable and contention yes, data and bugs no', () => {
    expect(isRetriable(fromPgError(pgError('57P01')))).toBe(true);
    expect(isRetriable(fromPgError(pgError('40P01')))).toBe(true);
    expect(isRetriable(fromPgError(pgError('22003')))).toBe(false);
    expect(isRetriable(fromPgError(pgError('42703')))).toBe(false);
  });

  it('keeps the SQLSTATE for an adapter that needs the exact one', () => {
    expect((fromPgError(pgError('23514')) as InvalidDataError).sqlState).toBe('23514');
  });

  it('an adapter may name more contention codes', () => {
    expect(fromPgError(pgError('23505'), { contention: ['23505'] })).toBeInstanceOf(ContentionError);
    expect(fromPgError(pgError('23503'), { contention: ['23505'] })).toBeInstanceOf(InvalidDataError);
  });

  it('lost and unobtainable connections are unavailable', () => {
    expect(fromPgError(sysError('ECONNREFUSED'))).toBeInstanceOf(UnavailableError);
    expect(fromPgError(new Error('Connection terminated unexpectedly'))).toBeInstanceOf(UnavailableError);
    expect(fromPgError(new Error('timeout exceeded when trying to connect'))).toBeInstanceOf(UnavailableError);
    expect(fromPgError(new Error('adjustments: wrote 1 of 2 stock rows'))).toBeInstanceOf(InternalError);
  });

  it('leaves a catalog error as it is', () => {
    const e = new SoldOutError('x');
    expect(fromPgError(e)).toBe(e);
  });
});

describe('fromRedisError', () => {
  it('connection loss and give-ups are unavailable (retriable)', () => {
    for (const err of [new Error('Connection is closed.'), new MaxRetriesPerRequestError(20) as unknown as Error, sysError('ECONNREFUSED'), new Error("Stream isn't writeable and enableOfflineQueue options is false")]) {
      const e = fromRedisError(err);
      expect(e, err.message).toBeInstanceOf(UnavailableError);
      expect(e.details).toEqual({ dependency: 'redis' });
      expect(e.retriable).toBe(true);
    }
  });

  it('a Redis Cluster out of reach, mid-failover or still forming is unavailable (retriable)', () => {
    for (const message of ['Failed to refresh slots cache.', 'None of startup nodes is available', 'Too many Cluster redirections. Last error: Error: connect ECONNREFUSED', "Cluster isn't ready and enableOfflineQueue options is false"]) {
      expect(fromRedisError(new Error(message)), message).toBeInstanceOf(UnavailableError);
    }
    expect(fromRedisError(new ReplyError('CLUSTERDOWN The cluster is down'))).toBeInstanceOf(UnavailableError);
    expect(fromRedisError(new ReplyError('TRYAGAIN Multiple keys request during rehashing of slot'))).toBeInstanceOf(UnavailableError);
  });

  it('"not now" replies are unavailable; other replies are bugs', () => {
    expect(fromRedisError(new ReplyError('LOADING Redis is loading the dataset in memory'))).toBeInstanceOf(UnavailableError);
    expect(fromRedisError(new ReplyError('READONLY You can\'t write against a read only replica.'))).toBeInstanceOf(UnavailableError);
    const wrong = fromRedisError(new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'));
    expect(wrong).toBeInstanceOf(InternalError);
    expect(wrong.retriable).toBe(false);
    expect(fromRedisError(new ReplyError('NOPERM this user has no permissions'))).toBeInstanceOf(InternalError);
  });
});

describe('fromKafkaError', () => {
  it('keeps kafkajs\' own retriable decision', () => {
    expect(fromKafkaError(new KafkaJSConnectionError('Connection error: ECONNREFUSED'))).toBeInstanceOf(TransientError);
    expect(fromKafkaError(new KafkaJSNonRetriableError('bad'))).toBeInstanceOf(InternalError);
  });
});

describe('fromRegistryError', () => {
  it('a 4xx answer is a SchemaError; a socket failure the client reports as 400, or a 5xx, is transient', () => {
    const notFound = Object.assign(new Error('Confluent_Schema_Registry - Schema not found'), { status: 404 });
    expect(fromRegistryError(notFound, 'cannot fetch schema id 9')).toBeInstanceOf(SchemaError);
    expect(fromRegistryError(notFound, 'cannot fetch schema id 9').message).toBe('cannot fetch schema id 9: Confluent_Schema_Registry - Schema not found');
    const refused = Object.assign(new Error('Confluent_Schema_Registry - Error, status 400: connect ECONNREFUSED 127.0.0.1:1'), { status: 400 });
    expect(fromRegistryError(refused, 'c')).toBeInstanceOf(TransientError);
    expect(fromRegistryError(Object.assign(new Error('boom'), { status: 503 }), 'c')).toBeInstanceOf(TransientError);
    expect(fromRegistryError(new Error('no status'), 'c')).toBeInstanceOf(TransientError);
  });
});
