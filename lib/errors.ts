/**
 * The platform's error classes. Each has a stable `code` (what clients and tests match on), a
 * `retriable` flag (the retry helper retries only those) and an optional `cause`. HTTP status
 * codes and WebSocket close codes are derived from these classes in the gateway, never chosen
 * ad hoc at the throw site.
 */
export interface ErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class PlatformError extends Error {
  readonly code: string = 'internal_error';
  readonly retriable: boolean = false;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details;
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
  override readonly retriable = true;
}

/** A service did not become healthy in time, or reported itself broken. */
export class ServiceError extends PlatformError {
  override readonly code = 'service_unhealthy';
}

/** A Kafka Connect connector could not be registered or is not running. */
export class ConnectorError extends PlatformError {
  override readonly code = 'connector_failed';
}

/** A transient failure (connection refused, timeout) that may succeed on retry. */
export class TransientError extends PlatformError {
  override readonly code = 'transient';
  override readonly retriable = true;
}

/** A migration file was changed after it was applied, or failed to apply. */
export class MigrationError extends PlatformError {
  override readonly code = 'migration_failed';
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

/** A value does not match its Avro schema, or a schema is malformed or refused by the registry. */
export class SchemaError extends PlatformError {
  override readonly code = 'schema_invalid';
}

export class InvalidMessageError extends PlatformError { override readonly code = 'invalid_message'; }
