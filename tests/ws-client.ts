/**
 * A WebSocket test client of the gateway's /v1/stream: collects frames, waits for one that
 * matches. Every client made here is listed in `openClients` for the suite's afterAll to close.
 */
import WebSocket from 'ws';
import type { GatewayService } from '../gateway/service.ts';

export const openClients: TestClient[] = [];
const open = openClients;

export type Frame = Record<string, unknown> & { type: string };

export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  private readonly waiters = new Set<() => void>();
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    open.push(this);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve((this.closeCode = code))));
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const w of this.waiters) w();
    });
  }

  private chain: Promise<void> = Promise.resolve();

  /** Sends once open, in call order. */
  send(frame: unknown): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.chain = this.chain.then(() => this.opened).then(() => this.ws.send(text));
  }

  waitFor(pred: (f: Frame) => boolean, timeoutMs = 20_000, what = 'a frame'): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.frames.find(pred);
        if (hit) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Every item received (snapshots and deltas), in order. */
  items(): Array<Record<string, unknown> & { sku: string; version: number; available: number }> {
    return this.frames
      .filter((f) => f.type === 'snapshot' || f.type === 'deltas')
      .flatMap((f) => f.items as Array<Record<string, unknown> & { sku: string; version: number; available: number }>);
  }
}

export function client(gw: GatewayService, query: string, headers: Record<string, string> = {}): TestClient {
  return new TestClient(`${gw.url.replace('http', 'ws')}/v1/stream${query}`, headers);
}

