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

/** Reads the body of `req`, at most `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = declaredLength(req);
    if (declared !== undefined && declared > limit) return resolve({ ok: false, reason: 'too_large' });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (r: BodyResult) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
      if (!r.ok) req.pause(); // the rest stays in the socket (back-pressure) until discardRest
      resolve(r);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) return finish({ ok: false, reason: 'too_large' });
      chunks.push(c);
    };
    const onEnd = () => finish({ ok: true, body: Buffer.concat(chunks, size) });
    const onError = () => finish({ ok: false, reason: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
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
