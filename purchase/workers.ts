/**
 * The purchase path's background work, run by every gateway (safe with any number of them):
 * hold expiry with the limit releases it commits, the limit releases left pending by a crash,
 * and the reaper of holds whose write-back outcome is unknown (docs/purchase-path.md,
 * "Lifecycle" and "Crash safety"). Also the timer loops that run these and any other periodic
 * pass (the waiting-room worker).
 */
import { errorMessage } from '../lib/errors.ts';
import { placedBody } from './domain/outcome.ts';
import { releaseItems } from './domain/release-items.ts';
import type { PurchasePorts } from './domain/ports.ts';

export type WorkerPorts = Pick<PurchasePorts, 'gate' | 'orders' | 'clock' | 'logger' | 'config'>;

export class PurchaseWorkers {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly ports: WorkerPorts) {}

  /**
   * Carries out the limit release a transition committed (customer_limit_releases) and forgets
   * it. On failure the row stays and the expiry worker carries it out later (`releasePending`);
   * the Redis side is idempotent, so a release that did happen is not repeated.
   */
  async releaseLimit(o: { orderId: string; customerId: string; lines: Array<{ sku: string; qty: number }> }): Promise<void> {
    try {
      await this.ports.gate.releaseLimit(o.orderId, o.customerId, releaseItems(o.lines));
      await this.ports.orders.limitReleased(o.orderId);
    } catch (err) {
      this.ports.logger.warn({ err: errorMessage(err), orderId: o.orderId }, 'customer limit release deferred to the expiry worker');
    }
  }

  /** Releases committed at least `olderThanMs` ago and still pending (a crash, Redis away). */
  async releasePending(olderThanMs = 5000): Promise<number> {
    const pending = await this.ports.orders.pendingLimitReleases(olderThanMs, 100);
    for (const r of pending) {
      await this.ports.gate.releaseLimit(r.orderId, r.customerId, r.items);
      await this.ports.orders.limitReleased(r.orderId);
    }
    return pending.length;
  }

  /** One pass of the expiry worker; returns how many holds expired. */
  async expireOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.ports.orders.expireDue(100);
      for (const o of expired) await this.releaseLimit(o);
      total += expired.length;
      if (expired.length < 100 || this.stopped) {
        await this.releasePending();
        return total;
      }
    }
  }

  /** One pass of the reaper: settles holds whose write-back outcome is unknown past the deadline. */
  async reapOnce(now = this.ports.clock.now()): Promise<{ released: number; settled: number }> {
    const { gate, orders } = this.ports;
    const overdue = await gate.overdueHolds(now, 100);
    let released = 0;
    let settled = 0;
    for (const at of overdue) {
      const hold = await gate.readHold(at);
      if (!hold || hold.state !== 'inflight') {
        await gate.forgetHold(at);
        continue;
      }
      const r = await orders.settleHold(hold);
      if (r.abandoned || r.status === 'abandoned') {
        if (await gate.release(hold)) released++;
      } else {
        const order = await orders.getOrder(hold.holdId);
        const body = order ? JSON.stringify(placedBody(order.orderId, order.expiresAt, order.lines)) : '';
        if (await gate.settle(hold, r.versions, body)) settled++;
      }
    }
    if (released + settled > 0) this.ports.logger.info({ released, settled }, 'reaper settled holds left by a gateway that stopped');
    return { released, settled };
  }

  /**
   * Starts the expiry worker, the reaper and `extra` passes (each every `ms`, default the
   * expiry interval); nothing when PURCHASE_EXPIRY_INTERVAL_MS is 0.
   */
  start(extra: Array<{ name: string; pass: () => Promise<unknown>; ms?: number }> = []): void {
    const every = this.ports.config.expiryIntervalMs;
    if (every === 0) return;
    const loop = (name: string, fn: () => Promise<unknown>, ms = every) => {
      const tick = async () => {
        if (this.stopped) return;
        try {
          await fn();
        } catch (err) {
          this.ports.logger.warn({ err: errorMessage(err), worker: name }, 'purchase worker pass failed; retrying next interval');
        }
        if (!this.stopped) this.timers.set(name, setTimeout(tick, ms));
      };
      this.timers.set(name, setTimeout(tick, ms));
    };
    loop('expiry', () => this.expireOnce());
    loop('reaper', () => this.reapOnce());
    for (const x of extra) loop(x.name, x.pass, x.ms);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
