/**
 * Group commit for write-backs. Accepted holds queue here; whenever a slot is free, everything
 * queued (up to `maxBatch`) goes to Postgres in one transaction. Under a flash sale this turns
 * hundreds of buyers of one hot row into a handful of transactions, each raising `reserved` once
 * per location; when traffic is light a hold is written alone, immediately.
 */
import type { HoldToWrite, WriteBackPort, WriteResult } from './domain/ports.ts';
import type { OrdersStore } from './adapters/orders-pg.ts';

interface Waiting {
  hold: HoldToWrite;
  resolve(r: WriteResult): void;
}

export class WriteBackQueue implements WriteBackPort {
  private readonly queue: Waiting[] = [];
  private running = 0;

  constructor(
    private readonly store: Pick<OrdersStore, 'writeHolds'>,
    private readonly opts: { maxBatch: number; maxConcurrent: number; onBatch?: (size: number, seconds: number) => void },
  ) {}

  write(hold: HoldToWrite): Promise<WriteResult> {
    return new Promise((resolve) => {
      this.queue.push({ hold, resolve });
      this.pump();
    });
  }

  get pending(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.running < this.opts.maxConcurrent && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.running++;
      const started = performance.now();
      this.store
        .writeHolds(batch.map((w) => w.hold))
        .then(
          (results) => {
            for (const w of batch) w.resolve(results.get(w.hold.holdId) ?? { ok: false, reason: 'error', message: 'no write-back result' });
          },
          (err: unknown) => {
            for (const w of batch) w.resolve({ ok: false, reason: 'error', message: (err as Error).message });
          },
        )
        .finally(() => {
          this.running--;
          this.opts.onBatch?.(batch.length, (performance.now() - started) / 1000);
          this.pump();
        });
    }
  }
}
