/**
 * The platform's one error catalog (after fastify's `lib/errors.js` and kafkajs' `src/errors.js`).
 *
 * Every error code a client, a test or an operator can see is defined ONCE in `ERROR_CATALOG`,
 * with the HTTP status it is answered with (none: never answered over HTTP, a 500
 * `internal_error` if it ever reaches a client), the WebSocket close code it closes a connection
 * with (where it does) and whether it is `retriable` (the same request may succeed later). Errors
 * are thrown as `PlatformError` subclasses; status, close code and `retriable` are read from the
 * catalog by the error's `code`, never chosen at the throw site.
 *
 * `retriable` is decided where an error is created: adapters turn driver errors into catalog
 * errors at the edge (lib/driver-errors.ts), so code further in asks `isRetriable(err)` or
 * `instanceof` and never looks at driver codes or messages. HTTP answers are shaped from these
 * errors in one place (lib/error-response.ts).
 *
 * Owns: codes, classes, classification flags. Must not: import drivers or know about transports.
 */

export interface CatalogEntry {
  /** The HTTP status the code is answered with; absent: never a client answer (a 500 internal_error). */
  readonly status?: number;
  /** The WebSocket close code (lib/contracts/protocol.ts `CLOSE_CODES`) a connection refused with this code gets. */
  readonly closeCode?: number;
  /** Also sent to WebSocket clients as an error frame `{type: 'error', code, message}`. */
  readonly frame?: true;
  /** The same request (or batch) may succeed when tried again later. */
  readonly retriable: boolean;
  /** One line for docs/gateway.md's table. */
  readonly summary: string;
}

export const ERROR_CATALOG = {
  // ---- requests: 4xx
  bad_request: { status: 400, retriable: false, summary: 'the request could not be parsed (path encoding, control characters, malformed HTTP)' },
  invalid_sku: { status: 400, retriable: false, summary: 'a SKU is 1 to 128 characters without control characters' },
  invalid_query: { status: 400, retriable: false, summary: 'a required query parameter is missing or malformed (`details.field`)' },
  too_many_skus: { status: 400, frame: true, retriable: false, summary: 'too many SKUs in one request or one connection' },
  invalid_json: { status: 400, frame: true, retriable: false, summary: 'the body (or WebSocket frame) is not valid JSON' },
  invalid_body: { status: 400, retriable: false, summary: 'the body does not match its schema (`details.field`)' },
  invalid_frame: { frame: true, retriable: false, summary: 'WebSocket only: a frame that is not a known client frame' },
  missing_idempotency_key: { status: 400, retriable: false, summary: 'POST /v1/purchases needs an Idempotency-Key header' },
  invalid_idempotency_key: { status: 400, retriable: false, summary: 'Idempotency-Key is 1 to 128 printable ASCII characters without spaces' },
  invalid_customer: { status: 400, retriable: false, summary: 'the customer named by X-Customer-Id / customerId is malformed or not yours to name' },
  missing_customer: { status: 400, retriable: false, summary: 'a service key buying for a customer must name it (X-Customer-Id or body customerId)' },
  invalid_order_id: { status: 400, retriable: false, summary: 'an order id is a UUID' },
  invalid_ticket: { status: 400, retriable: false, summary: 'a ticket reference is the fate URL a 202 answer gave' },
  unauthorized: { status: 401, closeCode: 4001, frame: true, retriable: false, summary: 'no credential, or one that is not valid (`WWW-Authenticate: Bearer`)' },
  token_expired: { closeCode: 4005, frame: true, retriable: true, summary: 'WebSocket only: the connection\'s token expired; reconnect with a fresh one' },
  forbidden: { status: 403, frame: true, retriable: false, summary: 'a valid credential without the scope the route needs' },
  not_found: { status: 404, retriable: false, summary: 'no such route' },
  unknown_sku: { status: 404, retriable: false, summary: 'no stock is known for the SKU' },
  unknown_location: { status: 404, retriable: false, summary: 'the catalog does not know the location' },
  unknown_receipt: { status: 404, retriable: false, summary: 'no expected receipt has this id (docs/incoming.md)' },
  unknown_order: { status: 404, retriable: false, summary: 'no such order, or not one the caller may see' },
  unknown_ticket: { status: 404, retriable: false, summary: 'no such waiting-room ticket, or its outcome is no longer kept' },
  unknown_channel: { closeCode: 4002, frame: true, retriable: false, summary: 'WebSocket only: the channel is not storefront, wms or erp' },
  unknown_sales_channel: { status: 404, closeCode: 4002, frame: true, retriable: false, summary: 'no sales channel has this id (docs/channels.md)' },
  channel_forbidden: { status: 403, frame: true, retriable: false, summary: 'the credential may not sell on (or read) this sales channel' },
  channel_without_locations: { status: 409, retriable: false, summary: 'the sales channel has no locations: it cannot sell anything' },
  method_not_allowed: { status: 405, retriable: false, summary: 'the route does not take this method (`Allow`)' },
  sold_out: { status: 409, retriable: false, summary: 'not enough units available; nothing was reserved' },
  customer_limit: { status: 409, retriable: false, summary: 'the customer may not buy more units of the SKU' },
  idempotency_in_progress: { status: 409, retriable: true, summary: 'a request with this Idempotency-Key is still being processed (`Retry-After`)' },
  invalid_state: { status: 409, retriable: false, summary: 'the order\'s state does not allow the transition' },
  hold_lifetime_exceeded: { status: 409, retriable: false, summary: 'the hold already expires at its maximum lifetime (`details.maxExpiresAt`); it cannot be extended further' },
  order_changed: { status: 409, retriable: false, summary: 'the hold\'s quantities kept changing while this change was decided; nothing changed, read the order before asking again' },
  stock_changed: { status: 409, retriable: false, summary: 'the adjustment\'s expectedOnHand / expectedVersion no longer hold; nothing changed (`details`: the current onHand, reserved, version)' },
  negative_on_hand: { status: 409, retriable: false, summary: 'the adjustment would take on hand below zero' },
  below_reserved: { status: 409, retriable: false, summary: 'the adjustment would take on hand below the reserved units' },
  on_hand_overflow: { status: 409, retriable: false, summary: 'the adjustment would take on hand past 2147483647' },
  adjustment_id_conflict: { status: 409, retriable: false, summary: 'the adjustment id was applied with a different payload' },
  receipt_line_conflict: { status: 409, retriable: false, summary: 'the receipt line cannot take this change (its SKU or location differs, it is received or cancelled, or the quantity falls below what was received); nothing changed (`details`)' },
  count_too_old: { status: 409, retriable: false, summary: 'a dated count (`countedAt`) older than the movement ledger\'s horizon: the movements since cannot be replayed (`details.horizon`); nothing changed' },
  count_superseded: { status: 409, retriable: false, summary: 'a dated count older than a count already applied at that location (`details.countedAt` of the newer one); nothing changed' },
  count_in_future: { status: 409, retriable: false, summary: 'a dated count whose `countedAt` is later than now (beyond a minute of clock skew); nothing changed' },
  body_too_large: { status: 413, retriable: false, summary: 'the body is larger than the route accepts' },
  idempotency_key_reused: { status: 422, retriable: false, summary: 'the Idempotency-Key was used with a different request' },
  rate_limited: { status: 429, frame: true, retriable: true, summary: 'too many requests or frames; retry after `Retry-After` seconds' },
  too_many_connections_from_address: { status: 429, retriable: true, summary: 'WebSocket upgrade: the address holds its maximum of connections (`Retry-After`)' },

  // ---- dependencies and the platform: 5xx
  internal_error: { status: 500, closeCode: 1011, frame: true, retriable: false, summary: 'the gateway could not answer (a bug; details are logged, not sent)' },
  unavailable: { status: 503, frame: true, retriable: true, summary: 'a dependency (Redis, Postgres) is unavailable; nothing was done, retry' },
  rebuilding: { status: 503, retriable: true, summary: 'stock data is being rebuilt after a Redis restart; nothing was reserved (`Retry-After`)' },
  channel_pending: { status: 503, retriable: true, summary: 'the SKU\'s figures for this sales channel are being computed (a channel just created); nothing was reserved (`Retry-After`)' },
  write_back_failed: { status: 503, retriable: true, summary: 'the purchase could not be recorded; nothing was reserved (`Retry-After`)' },
  shutting_down: { status: 503, retriable: true, summary: 'this gateway is draining; retry, another instance answers (`Retry-After`)' },
  too_many_connections: { status: 503, retriable: true, summary: 'WebSocket upgrade: the gateway holds its maximum of connections (`Retry-After`)' },

  // ---- inside the platform (never a client answer)
  transient: { retriable: true, summary: 'a transient failure (connection refused, timeout) that may succeed on retry' },
  contention: { retriable: true, summary: 'Postgres: deadlock or serialization failure (40P01, 40001); run the transaction again' },
  invalid_data: { retriable: false, summary: 'Postgres refused the data itself (SQLSTATE class 22 or 23); retrying cannot help' },
  invalid_message: { retriable: false, summary: 'a Kafka message that cannot be decoded (poison message): dead-letter it' },
  schema_invalid: { retriable: false, summary: 'a value does not match its Avro schema, or a schema is malformed or refused' },
  config_invalid: { retriable: false, summary: 'a configuration value is missing or malformed' },
  prerequisite_missing: { retriable: false, summary: 'something the stack needs is not installed' },
  port_in_use: { retriable: false, summary: 'a port the stack wants is held by another process' },
  download_failed: { retriable: true, summary: 'a download or dependency resolution failed' },
  service_unhealthy: { retriable: false, summary: 'a service did not become healthy in time' },
  connector_failed: { retriable: false, summary: 'a Kafka Connect connector could not be registered or is not running' },
  migration_failed: { retriable: false, summary: 'a migration changed after it was applied, or failed to apply' },
} as const satisfies Record<string, CatalogEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** The codes the catalog marks as also sent to WebSocket clients as error frames. */
export type FrameErrorCode = { [C in ErrorCode]: (typeof ERROR_CATALOG)[C] extends { frame: true } ? C : never }[ErrorCode];

/** The catalog's entry for `code`, with the optional fields visible. */
export function catalogEntry(code: ErrorCode): CatalogEntry {
  return ERROR_CATALOG[code];
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOG, code);
}

export interface ErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (HTTP `Retry-After`); defaults to none. */
  retryAfterS?: number;
  /** Other response headers the answer carries (`WWW-Authenticate`, `Allow`). */
  headers?: Readonly<Record<string, string>>;
  /**
   * false: no stack trace is captured. For refusals that only become a client's answer and are
   * never logged (a sold-out purchase): capturing the stack was the largest single cost of a
   * sold-out answer (docs/benchmarks.md, issue 16).
   */
  stack?: boolean;
}

export class PlatformError extends Error {
  readonly code: ErrorCode = 'internal_error';
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterS: number | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(message: string, options: ErrorOptions = {}) {
    const limit = Error.stackTraceLimit;
    if (options.stack === false) Error.stackTraceLimit = 0;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = new.target.name;
    this.details = options.details;
    this.retryAfterS = options.retryAfterS;
    this.headers = options.headers;
  }

  /** Whether trying again may succeed: the catalog's word for this code. */
  get retriable(): boolean {
    return ERROR_CATALOG[this.code].retriable;
  }

  /** The HTTP status of the code, or undefined when the code is never a client answer. */
  get httpStatus(): number | undefined {
    return catalogEntry(this.code).status;
  }

  /** The WebSocket close code of the code, where it closes a connection. */
  get closeCode(): number | undefined {
    return catalogEntry(this.code).closeCode;
  }
}

// ---- requests

export class BadRequestError extends PlatformError {
  override readonly code = 'bad_request';
}
export class InvalidSkuError extends PlatformError {
  override readonly code = 'invalid_sku';
}
export class InvalidQueryError extends PlatformError {
  override readonly code = 'invalid_query';
}
export class TooManySkusError extends PlatformError {
  override readonly code = 'too_many_skus';
}
export class InvalidJsonError extends PlatformError {
  override readonly code = 'invalid_json';
}
export class InvalidBodyError extends PlatformError {
  override readonly code = 'invalid_body';
}
export class InvalidFrameError extends PlatformError {
  override readonly code = 'invalid_frame';
}
export class MissingIdempotencyKeyError extends PlatformError {
  override readonly code = 'missing_idempotency_key';
}
export class InvalidIdempotencyKeyError extends PlatformError {
  override readonly code = 'invalid_idempotency_key';
}
export class InvalidCustomerError extends PlatformError {
  override readonly code = 'invalid_customer';
}
export class MissingCustomerError extends PlatformError {
  override readonly code = 'missing_customer';
}
export class InvalidOrderIdError extends PlatformError {
  override readonly code = 'invalid_order_id';
}
export class InvalidTicketError extends PlatformError {
  override readonly code = 'invalid_ticket';
}
export class UnauthorizedError extends PlatformError {
  override readonly code = 'unauthorized';
}
export class TokenExpiredError extends PlatformError {
  override readonly code = 'token_expired';
}
export class ForbiddenError extends PlatformError {
  override readonly code = 'forbidden';
}
export class NotFoundError extends PlatformError {
  override readonly code = 'not_found';
}
export class UnknownSkuError extends PlatformError {
  override readonly code = 'unknown_sku';
}
export class UnknownLocationError extends PlatformError {
  override readonly code = 'unknown_location';
}
export class UnknownReceiptError extends PlatformError {
  override readonly code = 'unknown_receipt';
}
export class ReceiptLineConflictError extends PlatformError {
  override readonly code = 'receipt_line_conflict';
}
export class UnknownOrderError extends PlatformError {
  override readonly code = 'unknown_order';
}
export class UnknownTicketError extends PlatformError {
  override readonly code = 'unknown_ticket';
}
export class UnknownChannelError extends PlatformError {
  override readonly code = 'unknown_channel';
}
export class MethodNotAllowedError extends PlatformError {
  override readonly code = 'method_not_allowed';
}
export class SoldOutError extends PlatformError {
  override readonly code = 'sold_out';
}
export class CustomerLimitError extends PlatformError {
  override readonly code = 'customer_limit';
}
export class IdempotencyInProgressError extends PlatformError {
  override readonly code = 'idempotency_in_progress';
}
export class InvalidStateError extends PlatformError {
  override readonly code = 'invalid_state';
}
export class HoldLifetimeExceededError extends PlatformError {
  override readonly code = 'hold_lifetime_exceeded';
}
export class OrderChangedError extends PlatformError {
  override readonly code = 'order_changed';
}
export class StockChangedError extends PlatformError {
  override readonly code = 'stock_changed';
}
export class NegativeOnHandError extends PlatformError {
  override readonly code = 'negative_on_hand';
}
export class BelowReservedError extends PlatformError {
  override readonly code = 'below_reserved';
}
export class OnHandOverflowError extends PlatformError {
  override readonly code = 'on_hand_overflow';
}
export class AdjustmentIdConflictError extends PlatformError {
  override readonly code = 'adjustment_id_conflict';
}
export class CountTooOldError extends PlatformError {
  override readonly code = 'count_too_old';
}
export class CountSupersededError extends PlatformError {
  override readonly code = 'count_superseded';
}
export class CountInFutureError extends PlatformError {
  override readonly code = 'count_in_future';
}
export class BodyTooLargeError extends PlatformError {
  override readonly code = 'body_too_large';
}
export class IdempotencyKeyReusedError extends PlatformError {
  override readonly code = 'idempotency_key_reused';
}
export class RateLimitedError extends PlatformError {
  override readonly code = 'rate_limited';
}
export class TooManyConnectionsFromAddressError extends PlatformError {
  override readonly code = 'too_many_connections_from_address';
}

// ---- dependencies and the platform

/** A bug or an unclassified failure: answered as a bare 500, details only in the log. */
export class InternalError extends PlatformError {
  override readonly code = 'internal_error';
}
/** A dependency (Redis, Postgres, the registry) cannot be reached or refuses work for now. */
export class UnavailableError extends PlatformError {
  override readonly code = 'unavailable';
}
export class RebuildingError extends PlatformError {
  override readonly code = 'rebuilding';
}
export class ChannelPendingError extends PlatformError {
  override readonly code = 'channel_pending';
}
export class UnknownSalesChannelError extends PlatformError {
  override readonly code = 'unknown_sales_channel';
}
export class ChannelForbiddenError extends PlatformError {
  override readonly code = 'channel_forbidden';
}
export class ChannelWithoutLocationsError extends PlatformError {
  override readonly code = 'channel_without_locations';
}
export class WriteBackFailedError extends PlatformError {
  override readonly code = 'write_back_failed';
}
export class ShuttingDownError extends PlatformError {
  override readonly code = 'shutting_down';
}
export class TooManyConnectionsError extends PlatformError {
  override readonly code = 'too_many_connections';
}

/** A transient failure (connection refused, timeout) that may succeed on retry. */
export class TransientError extends PlatformError {
  override readonly code = 'transient';
}

/** Postgres deadlock / serialization failure (or a race the adapter retries): run it again. */
export class ContentionError extends PlatformError {
  override readonly code = 'contention';
  /** The SQLSTATE Postgres answered. */
  readonly sqlState: string | undefined;
  constructor(message: string, options: ErrorOptions & { sqlState?: string } = {}) {
    super(message, options);
    this.sqlState = options.sqlState;
  }
}

/** Postgres refused the data itself (SQLSTATE class 22 data exception, 23 integrity violation). */
export class InvalidDataError extends PlatformError {
  override readonly code = 'invalid_data';
  /** The SQLSTATE Postgres answered (e.g. 23514: a CHECK guard refused the row). */
  readonly sqlState: string | undefined;
  constructor(message: string, options: ErrorOptions & { sqlState?: string } = {}) {
    super(message, options);
    this.sqlState = options.sqlState;
  }
}

/** A configuration value is missing or malformed. Never retriable: fix the value. */
export class ConfigError extends PlatformError {
  override readonly code = 'config_invalid';
  readonly variable: string;
  constructor(message: string, options: { variable: string; cause?: unknown }) {
    super(message, { cause: options.cause, details: { variable: options.variable } });
    this.variable = options.variable;
  }
}

/** Something the stack needs is not installed on this machine. */
export class PrerequisiteError extends PlatformError {
  override readonly code = 'prerequisite_missing';
}

/** A port the native stack wants is held by a process the stack did not start. */
export class PortInUseError extends PlatformError {
  override readonly code = 'port_in_use';
}

/** A download or dependency resolution failed. */
export class DownloadError extends PlatformError {
  override readonly code = 'download_failed';
}

/** A service did not become healthy in time, or reported itself broken. */
export class ServiceError extends PlatformError {
  override readonly code = 'service_unhealthy';
}

/** A Kafka Connect connector could not be registered or is not running. */
export class ConnectorError extends PlatformError {
  override readonly code = 'connector_failed';
}

/** A migration file was changed after it was applied, or failed to apply. */
export class MigrationError extends PlatformError {
  override readonly code = 'migration_failed';
}

/** A value does not match its Avro schema, or a schema is malformed or refused by the registry. */
export class SchemaError extends PlatformError {
  override readonly code: ErrorCode = 'schema_invalid';
}

/**
 * A Kafka message that cannot be decoded or read as its record (a poison message): never
 * retriable, the stage dead-letters it. It is a SchemaError too (the value does not match the
 * schema it claims), so code that dead-letters on `SchemaError` keeps working.
 */
export class InvalidMessageError extends SchemaError {
  override readonly code = 'invalid_message';
}

/** The error class of each catalog code, for codes that come as data (domain refusals). */
type ErrorClass = new (message: string, options?: ErrorOptions) => PlatformError;
type ErrorFactory = (message: string, options?: ErrorOptions) => PlatformError;
const CLASSES: { readonly [C in ErrorCode]: ErrorClass | ErrorFactory } = {
  bad_request: BadRequestError,
  invalid_sku: InvalidSkuError,
  invalid_query: InvalidQueryError,
  too_many_skus: TooManySkusError,
  invalid_json: InvalidJsonError,
  invalid_body: InvalidBodyError,
  invalid_frame: InvalidFrameError,
  missing_idempotency_key: MissingIdempotencyKeyError,
  invalid_idempotency_key: InvalidIdempotencyKeyError,
  invalid_customer: InvalidCustomerError,
  missing_customer: MissingCustomerError,
  invalid_order_id: InvalidOrderIdError,
  invalid_ticket: InvalidTicketError,
  unauthorized: UnauthorizedError,
  token_expired: TokenExpiredError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  unknown_sku: UnknownSkuError,
  unknown_location: UnknownLocationError,
  unknown_sales_channel: UnknownSalesChannelError,
  channel_forbidden: ChannelForbiddenError,
  channel_without_locations: ChannelWithoutLocationsError,
  channel_pending: ChannelPendingError,
  unknown_receipt: UnknownReceiptError,
  receipt_line_conflict: ReceiptLineConflictError,
  unknown_order: UnknownOrderError,
  unknown_ticket: UnknownTicketError,
  unknown_channel: UnknownChannelError,
  method_not_allowed: MethodNotAllowedError,
  sold_out: SoldOutError,
  customer_limit: CustomerLimitError,
  idempotency_in_progress: IdempotencyInProgressError,
  invalid_state: InvalidStateError,
  hold_lifetime_exceeded: HoldLifetimeExceededError,
  order_changed: OrderChangedError,
  stock_changed: StockChangedError,
  negative_on_hand: NegativeOnHandError,
  below_reserved: BelowReservedError,
  on_hand_overflow: OnHandOverflowError,
  adjustment_id_conflict: AdjustmentIdConflictError,
  count_too_old: CountTooOldError,
  count_superseded: CountSupersededError,
  count_in_future: CountInFutureError,
  body_too_large: BodyTooLargeError,
  idempotency_key_reused: IdempotencyKeyReusedError,
  rate_limited: RateLimitedError,
  too_many_connections_from_address: TooManyConnectionsFromAddressError,
  internal_error: InternalError,
  unavailable: UnavailableError,
  rebuilding: RebuildingError,
  write_back_failed: WriteBackFailedError,
  shutting_down: ShuttingDownError,
  too_many_connections: TooManyConnectionsError,
  transient: TransientError,
  contention: ContentionError,
  invalid_data: InvalidDataError,
  invalid_message: InvalidMessageError,
  schema_invalid: SchemaError,
  config_invalid: (message, options) => new ConfigError(message, { variable: String(options?.details?.variable ?? ''), cause: options?.cause }),
  prerequisite_missing: PrerequisiteError,
  port_in_use: PortInUseError,
  download_failed: DownloadError,
  service_unhealthy: ServiceError,
  connector_failed: ConnectorError,
  migration_failed: MigrationError,
};

/**
 * The catalog error for a code that arrives as data (a domain refusal such as `unknown_location`,
 * an identity refusal such as `invalid_customer`).
 */
export function errorFor(code: ErrorCode, message: string, options?: ErrorOptions): PlatformError {
  const make = CLASSES[code];
  // Classes have a prototype; the one factory (ConfigError's constructor differs) is an arrow function.
  return 'prototype' in make ? new (make as ErrorClass)(message, options) : (make as ErrorFactory)(message, options);
}

export function isRetriable(err: unknown): boolean {
  if (err instanceof PlatformError) return err.retriable;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P03'].includes(code);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
