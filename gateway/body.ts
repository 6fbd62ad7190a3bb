/**
 * Reading request bodies with the size limit enforced while they stream in: a declared
 * Content-Length over the limit is refused before a byte is read, a chunked body as soon as it
 * passes the limit. Nothing past the limit is kept in memory. After the 413 is answered, the rest
 * of the body is read and dropped for a little while (so the client sees the answer instead of a
 * reset) and then the connection is cut: a 20 MiB body is never read whole.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { BodyTooLargeError, errorMessage, InvalidJsonError } from '../lib/errors.ts';

/** Bytes read and dropped after a 413 before the connection is cut. */
export const LINGER_BYTES = 1024 * 1024;
/** How long a refused body may keep streaming before the connection is cut (ms). */
export const LINGER_MS = 5000;

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'aborted' };

/** The declared Content-Length, or undefined (chunked or none). */
export function declaredLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined || !/^\d{1,16}$/.test(raw)) return undefined;
  return Number(raw);
}

/** A body being read: what `readBody`'s listeners share (kept on the request, see below). */
interface Reading {
  chunks: Buffer[];
  size: number;
  limit: number;
  resolve(r: BodyResult): void;
}

const READING = Symbol('invsync.bodyReading');
type ReadingRequest = IncomingMessage & { [READING]?: Reading };

/**
 * Reads the body of `req`, at most `limit` bytes. The listeners are module functions that find
 * their state on the request: no closures per request (this runs on every purchase).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = declaredLength(req);
    if (declared !== undefined && declared > limit) return resolve({ ok: false, reason: 'too_large' });
    (req as ReadingRequest)[READING] = { chunks: [], size: 0, limit, resolve };
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    req.on('error', onBodyError);
    req.on('aborted', onBodyError);
  });
}

function finishReading(req: ReadingRequest, r: BodyResult): void {
  const reading = req[READING];
  if (!reading) return;
  req[READING] = undefined;
  req.off('data', onBodyData);
  req.off('end', onBodyEnd);
  req.off('error', onBodyError);
  req.off('aborted', onBodyError);
  if (!r.ok) req.pause(); // the rest stays in the socket (back-pressure) until discardRest
  reading.resolve(r);
}

function onBodyData(this: ReadingRequest, c: Buffer): void {
  const reading = this[READING];
  if (!reading) return;
  reading.size += c.length;
  if (reading.size > reading.limit) return finishReading(this, { ok: false, reason: 'too_large' });
  reading.chunks.push(c);
}

function onBodyEnd(this: ReadingRequest): void {
  const reading = this[READING];
  if (reading) finishReading(this, { ok: true, body: reading.chunks.length === 1 ? reading.chunks[0]! : Buffer.concat(reading.chunks, reading.size) });
}

function onBodyError(this: ReadingRequest): void {
  finishReading(this, { ok: false, reason: 'aborted' });
}

/**
 * Called once a refusal has been answered: reads and drops what the client is still sending, up
 * to LINGER_BYTES or LINGER_MS, then cuts the connection.
 */
export function discardRest(req: IncomingMessage): void {
  if (req.complete) return;
  let seen = 0;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, LINGER_MS);
  timer.unref();
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > LINGER_BYTES) {
      clearTimeout(timer);
      cut();
    }
  });
  req.on('end', () => clearTimeout(timer));
  req.on('error', () => clearTimeout(timer));
  req.resume();
}

/**
 * Express middleware: the JSON body into `req.body`, the size limit held while it streams in
 * (express.json would read a too-large body to its end before answering 413). `what` names the
 * body in the 413's message ("an adjustment body").
 */
export function jsonBody(limit: number, what: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    readBody(req, limit).then(
      (read) => {
        if (!read.ok && read.reason === 'aborted') return void res.destroy();
        if (!read.ok) {
          res.once('finish', () => discardRest(req));
          return next(new BodyTooLargeError(`${what} is at most ${limit} bytes`, { details: { field: 'body' } }));
        }
        try {
          req.body = JSON.parse(read.body.toString('utf8')) as unknown;
        } catch (err) {
          return next(new InvalidJsonError(`the body is not valid JSON: ${errorMessage(err)}`, { details: { field: 'body' } }));
        }
        next();
      },
      (err: unknown) => next(err),
    );
  };
}
