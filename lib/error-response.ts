/**
 * The one place an error becomes an HTTP answer: status from the catalog (lib/errors.ts), body
 * `{error, message, details?}`, `Retry-After` when the error carries a retry hint, and the
 * error's own headers (`WWW-Authenticate`, `Allow`). The gateway's express error handler, the
 * purchase hot path and the purchase service's outcomes all answer through `errorResponse`.
 *
 * An error the catalog does not answer over HTTP (a bug, a driver error nobody classified, an
 * internal code such as `invalid_data`) is a bare 500 `internal_error`: its message stays in the
 * log, never in the answer.
 */
import { PlatformError } from './errors.ts';

export interface ErrorBody {
  error: string;
  message: string;
  details?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  headers?: Record<string, string>;
}

export const INTERNAL_ERROR_MESSAGE = 'the gateway could not answer this request';

/** The HTTP answer for `err`. */
export function errorResponse(err: unknown): ErrorAnswer {
  if (err instanceof PlatformError && err.httpStatus !== undefined && err.code !== 'internal_error') {
    const body: ErrorBody = err.details ? { error: err.code, message: err.message, details: err.details } : { error: err.code, message: err.message };
    // Most refusals (a sold-out purchase) carry no header: no headers object for them.
    if (err.retryAfterS === undefined && (err.headers === undefined || Object.keys(err.headers).length === 0)) return { status: err.httpStatus, body };
    const headers: Record<string, string> = { ...err.headers };
    if (err.retryAfterS !== undefined) headers['Retry-After'] = String(err.retryAfterS);
    return { status: err.httpStatus, body, headers };
  }
  // express and its parsers mark a client's mistake with a 4xx `status` / `statusCode`.
  if (!(err instanceof PlatformError)) {
    const status = (err as { status?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return { status, body: { error: 'bad_request', message: (err as Error).message } };
    }
  }
  return { status: 500, body: { error: 'internal_error', message: INTERNAL_ERROR_MESSAGE } };
}
