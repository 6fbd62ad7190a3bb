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
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { WebSocketServer } from 'ws';
import { errorResponse } from '../lib/error-response.ts';
import { ShuttingDownError } from '../lib/errors.ts';
import { sendAnswer } from './raw-answer.ts';

export type DrainPhase = 'serving' | 'not_ready' | 'refusing';

export class HttpDrain {
  phase: DrainPhase = 'serving';
  private readonly open = new Set<ServerResponse>();
  private readonly waiters = new Set<() => void>();
  private readonly streams = new Set<ServerResponse>();

  get inFlight(): number {
    return this.open.size;
  }

  /** Wraps the server's request listener. */
  track(handler: (req: IncomingMessage, res: ServerResponse) => void): RequestListener {
    return (req, res) => {
      if (this.phase === 'refusing') {
        const refusal = new ShuttingDownError('this gateway is shutting down; retry (another instance answers)', { retryAfterS: 1 });
        sendAnswer(res, errorResponse(refusal), { close: true, contentType: 'application/json' });
        return;
      }
      this.open.add(res);
      res.once('close', () => {
        this.open.delete(res);
        this.streams.delete(res);
        if (this.open.size === 0) for (const w of [...this.waiters]) w();
      });
      // A response that finishes while draining closes its connection instead of keeping it alive.
      const writeHead = res.writeHead;
      res.writeHead = ((...args: Parameters<typeof writeHead>) => {
        if (this.phase === 'refusing' && !res.headersSent) res.setHeader('connection', 'close');
        // Headers given to writeHead directly are not visible to getHeader: look at them here.
        if (isEventStream(args) || isEventStreamType(res.getHeader('content-type'))) this.streams.add(res);
        return writeHead.apply(res, args);
      }) as typeof writeHead;
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

/** Whether writeHead's arguments set `Content-Type: text/event-stream`. */
function isEventStream(args: unknown[]): boolean {
  for (const a of args) {
    if (Array.isArray(a)) {
      for (let i = 0; i + 1 < a.length; i += 2) if (String(a[i]).toLowerCase() === 'content-type' && isEventStreamType(a[i + 1])) return true;
    } else if (a && typeof a === 'object') {
      for (const [k, v] of Object.entries(a)) if (k.toLowerCase() === 'content-type' && isEventStreamType(v)) return true;
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
