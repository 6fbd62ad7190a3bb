/**
 * Error answers written where there is no `ServerResponse`: on a raw socket (a refused WebSocket
 * upgrade, node's `clientError` for malformed HTTP) or before routing (the drain's refusals).
 * Status, body and `Retry-After` come from the error catalog through lib/error-response.ts, the
 * one HTTP mapping; this module only serialises the answer.
 *
 * Must not: choose statuses or codes (the one exception, `parserStatus`, is node's own choice
 * for failures its HTTP parser detects).
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { ErrorAnswer } from '../lib/error-response.ts';

/**
 * The status node's HTTP parser answers a malformed request with (its default `clientError`
 * handler does the same): oversized headers 431, a request that timed out 408, anything else
 * the catalog's status for the answer (400 `bad_request`). The body's code stays `bad_request`.
 */
export function parserStatus(parserCode: string | undefined, fallback: number): number {
  if (parserCode === 'HPE_HEADER_OVERFLOW') return 431;
  if (parserCode === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return fallback;
}

/** `answer` as a complete HTTP/1.1 response that closes the connection, for a raw socket. */
export function rawHttpAnswer(answer: ErrorAnswer, status = answer.status): string {
  const body = JSON.stringify(answer.body);
  const headers = Object.entries(answer.headers ?? {})
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `${headers}Connection: close\r\n\r\n${body}`
  );
}

/** Writes `answer` on a response whose headers are not sent yet, closing the connection when `close`. */
export function sendAnswer(res: ServerResponse, answer: ErrorAnswer, options: { close?: boolean; contentType?: string } = {}): void {
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    'Content-Type': options.contentType ?? 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...answer.headers,
    ...(options.close ? { Connection: 'close' } : {}),
  });
  res.end(body);
}
