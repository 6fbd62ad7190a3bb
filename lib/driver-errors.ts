/**
 * Driver errors (pg, ioredis, kafkajs, the schema registry client) turned into catalog errors
 * (lib/errors.ts) at the adapter edge, so `retriable` is decided once, where the error is made,
 * and nothing further in reads SQLSTATEs, socket codes or messages.
 *
 * Pure (duck-typed on the drivers' error shapes; imports no driver). Where a driver reports a
 * failure only by its message (pg-pool's "timeout exceeded when trying to connect", ioredis'
 * "Connection is closed.", the registry client flattening socket errors into a 400 response),
 * the message is read HERE and nowhere else.
 *
 * Every wrapper returns a PlatformError unchanged, keeps the driver error as `cause`, and keeps
 * the driver error's message (logs and dead-letter reasons read the same as before).
 */
import {
  ContentionError,
  errorMessage,
  InternalError,
  InvalidDataError,
  PlatformError,
  SchemaError,
  TransientError,
  UnavailableError,
} from './errors.ts';

/** Socket-level failures of any driver: the peer is not there (yet), try again. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isNetworkError(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && NETWORK_CODES.has(code);
}

// ---- Postgres (pg / pg-pool)

/** pg and pg-pool report a lost or unobtainable connection as a plain Error with one of these messages. */
const PG_CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end/i;

/** SQLSTATEs that mean "not now": the server is unreachable, out of resources or shutting down. */
function pgUnavailable(sqlState: string): boolean {
  return sqlState.startsWith('08') || sqlState.startsWith('53') || sqlState.startsWith('57P');
}

export interface PgErrorOptions {
  /**
   * SQLSTATEs this adapter treats as contention (run it again) besides 40001 and 40P01, e.g.
   * 23505 where a concurrent insert of the same key is a race the retry resolves.
   */
  contention?: readonly string[];
}

/**
 * A pg error as a catalog error:
 *   08xxx, 53xxx, 57P0x, socket errors, lost connections  -> UnavailableError (retriable)
 *   40001, 40P01 (and `options.contention`)                -> ContentionError (retriable)
 *   22xxx, 23xxx                                           -> InvalidDataError (not retriable)
 *   anything else                                          -> InternalError (not retriable)
 */
export function fromPgError(err: unknown, options: PgErrorOptions = {}): PlatformError {
  if (err instanceof PlatformError) return err;
  const message = errorMessage(err);
  const code = codeOf(err);
  if (isNetworkError(err) || (code === undefined && PG_CONNECTION_MESSAGES.test(message))) {
    return new UnavailableError(message, { cause: err, details: { dependency: 'postgres' } });
  }
  // A SQLSTATE is five characters of digits and upper-case letters.
  const sqlState = code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  if (sqlState !== undefined) {
    if (pgUnavailable(sqlState)) return new UnavailableError(message, { cause: err, details: { dependency: 'postgres', sqlState } });
    if (sqlState === '40001' || sqlState === '40P01' || options.contention?.includes(sqlState)) return new ContentionError(message, { cause: err, sqlState });
    if (sqlState.startsWith('22') || sqlState.startsWith('23')) return new InvalidDataError(message, { cause: err, sqlState });
  }
  return new InternalError(message, { cause: err, ...(sqlState ? { details: { sqlState } } : {}) });
}

// ---- Redis (ioredis)

/** ioredis reports a connection it does not have as a plain Error with one of these messages. */
const REDIS_CONNECTION_MESSAGES =
  /^Connection is closed\.|^Stream isn't writeable|^Command timed out|^Socket timeout|^connect ETIMEDOUT|^Ready check failed|^Failed to refresh slots cache|^Redis Cluster not reachable|^None of startup nodes is available|^Too many Cluster redirections|^Cluster isn't ready/;
/** Server replies that mean "not now": loading the dataset, busy script, failover under way. */
const REDIS_RETRY_REPLIES = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/;

/**
 * An ioredis error as a catalog error: lost connections, give-ups after retries
 * (MaxRetriesPerRequestError) and "not now" replies (LOADING, BUSY, READONLY, ...) are
 * UnavailableError; any other server reply (WRONGTYPE, NOSCRIPT, ERR, NOPERM, ...) is an
 * InternalError: the command is wrong, retrying repeats it.
 */
export function fromRedisError(err: unknown): PlatformError {
  if (err instanceof PlatformError) return err;
  const message = errorMessage(err);
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'ReplyError') {
    if (REDIS_RETRY_REPLIES.test(message)) return new UnavailableError(message, { cause: err, details: { dependency: 'redis' } });
    return new InternalError(message, { cause: err });
  }
  if (isNetworkError(err) || name === 'MaxRetriesPerRequestError' || name === 'ClusterAllFailedError' || REDIS_CONNECTION_MESSAGES.test(message)) {
    return new UnavailableError(message, { cause: err, details: { dependency: 'redis' } });
  }
  return new InternalError(message, { cause: err });
}

// ---- Kafka (kafkajs)

/** A kafkajs error as a catalog error: kafkajs decides `retriable` itself; it is kept. */
export function fromKafkaError(err: unknown): PlatformError {
  if (err instanceof PlatformError) return err;
  const message = errorMessage(err);
  const retriable = (err as { retriable?: unknown } | null)?.retriable;
  if (retriable === true || isNetworkError(err)) return new TransientError(message, { cause: err, details: { dependency: 'kafka' } });
  return new InternalError(message, { cause: err });
}

// ---- Schema registry (@kafkajs/confluent-schema-registry, on mappersmith)

// mappersmith reports a socket failure as a response with status 400 whose message is the
// socket error's, and the client keeps only that message: it is the one signal there is.
const REGISTRY_NETWORK_FAILURE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|socket hang up|timeout/i;

/**
 * A registry client failure as a catalog error: a 4xx answer (unknown schema id, malformed
 * schema) is a SchemaError, definitive; an unreachable registry or a 5xx is a TransientError.
 */
export function fromRegistryError(err: unknown, context: string): PlatformError {
  if (err instanceof PlatformError) return err;
  const status = (err as { status?: unknown } | null)?.status;
  const message = `${context}: ${errorMessage(err)}`;
  if (typeof status === 'number' && status >= 400 && status < 500 && !isNetworkError(err) && !REGISTRY_NETWORK_FAILURE.test(errorMessage(err))) {
    return new SchemaError(message, { cause: err, details: { status } });
  }
  return new TransientError(message, { cause: err, details: { dependency: 'registry', ...(typeof status === 'number' ? { status } : {}) } });
}
