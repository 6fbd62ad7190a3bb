/**
 * The HTTP side of a gateway's graceful stop (docs/operations.md, "Graceful stop"). Tracks the
 * requests in flight and, by phase:
 *   serving    everything is answered;
 *   not_ready  everything is answered, but /readyz says 503 (the service's ready check reads the phase);
 *   refusing   requests that arrive now (on keep-alive connections opened earlier) get
 *              503 `shutting_down` with Retry-After and Connection: close; requests already in
 *              flight run to their end (a purchase waits for its write-back and gets its 201).
 * Long-lived responses (server-sent events) are ended when refusing starts: their clients reconnect.
 */
import { ServerResponse, type IncomingMessage, type RequestListener } from 'node:http';
import type { WebSocketServer } from 'ws';
import { errorResponse } from '../lib/error-response.ts';
import { ShuttingDownError } from '../lib/errors.ts';
import { sendAnswer } from './raw-answer.ts';

const ORIGINAL_WRITE_HEAD = ServerResponse.prototype.writeHead;

export type DrainPhase = 'serving' | 'not_ready' | 'refusing';

export class HttpDrain {
  phase: DrainPhase = 'serving';
  private readonly open = new Set<ServerResponse>();
  private readonly waiters = new Set<() => void>();
  private readonly streams = new Set<ServerResponse>();

  get inFlight(): number {
    return this.open.size;
  }

  /**
   * The per-response hooks, made once per drain (not per request: a flash sale answers tens of
   * thousands of requests a second). `this` is the response.
   */
  private readonly onClose = (() => {
    const drain = this;
    return function onResponseClose(this: ServerResponse): void {
      drain.open.delete(this);
      drain.streams.delete(this);
      if (drain.open.size === 0) for (const w of [...drain.waiters]) w();
    };
  })();

  /** A response that starts while draining closes its connection instead of keeping it alive. */
  private readonly writeHead = (() => {
    const drain = this;
    return function drainingWriteHead(this: ServerResponse, ...args: unknown[]): ServerResponse {
      if (drain.phase === 'refusing' && !this.headersSent) this.setHeader('connection', 'close');
      // Headers given to writeHead directly are not visible to getHeader: look at them here.
      if (isEventStream(args) || isEventStreamType(this.getHeader('content-type'))) drain.streams.add(this);
      return (ORIGINAL_WRITE_HEAD as (...a: unknown[]) => ServerResponse).apply(this, args);
    };
  })();

  /** Wraps the server's request listener. */
  track(handler: (req: IncomingMessage, res: ServerResponse) => void): RequestListener {
    return (req, res) => {
      if (this.phase === 'refusing') {
        const refusal = new ShuttingDownError('this gateway is shutting down; retry (another instance answers)', { retryAfterS: 1 });
        sendAnswer(res, errorResponse(refusal), { close: true, contentType: 'application/json' });
        return;
      }
      this.open.add(res);
      res.on('close', this.onClose); // 'close' is emitted once
      res.writeHead = this.writeHead as typeof res.writeHead;
      handler(req, res);
    };
  }

  /** Ends server-sent-event streams (they never finish by themselves). */
  endStreams(): void {
    for (const res of this.streams) res.end();
  }

  /** Resolves true when no request is in flight, false when `ms` passed first. */
  idle(ms: number): Promise<boolean> {
    if (this.open.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(onIdle);
        resolve(ok);
      };
      const onIdle = () => done(true);
      const timer = setTimeout(() => done(false), Math.max(0, ms));
      this.waiters.add(onIdle);
    });
  }
}

function isEventStreamType(value: unknown): boolean {
  return String(value ?? '').toLowerCase().startsWith('text/event-stream');
}

const CONTENT_TYPE = 'content-type';

function isContentType(name: unknown): boolean {
  return typeof name === 'string' && name.length === CONTENT_TYPE.length && name.toLowerCase() === CONTENT_TYPE;
}

/** Whether writeHead's arguments set `Content-Type: text/event-stream`. */
function isEventStream(args: unknown[]): boolean {
  for (const a of args) {
    if (Array.isArray(a)) {
      for (let i = 0; i + 1 < a.length; i += 2) if (isContentType(a[i]) && isEventStreamType(a[i + 1])) return true;
    } else if (a && typeof a === 'object') {
      const headers = a as Record<string, unknown>;
      for (const k in headers) if (isContentType(k) && isEventStreamType(headers[k])) return true;
    }
  }
  return false;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves when every WebSocket has closed (after their close handshakes) or `ms` passed. */
export async function waitClosed(wss: WebSocketServer, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (wss.clients.size > 0 && Date.now() < deadline) await sleep(20);
}
