/**
 * The purchase path's real ports: the gate and the waiting room in Redis, orders and the
 * group-committed write-back in Postgres, the wall clock, random UUIDs. Wiring only.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { RedisClient } from '../lib/redis.ts';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { Gate } from './adapters/gate.ts';
import { HoldsStore } from './adapters/holds-pg.ts';
import { OrdersStore } from './adapters/orders-pg.ts';
import { WaitingRoomStore } from './adapters/waiting-room.ts';
import type { PurchaseEvents, PurchasePorts } from './domain/ports.ts';
import { WriteBackQueue } from './write-back-queue.ts';

export function createPurchasePorts(deps: { redis: RedisClient; pool: pg.Pool; config: Readonly<Config>; logger: Logger; events?: PurchaseEvents }): PurchasePorts {
  const p = deps.config.purchase;
  const prefix = deps.config.redis.prefix;
  const orders = new OrdersStore(deps.pool);
  return {
    gate: new Gate({
      redis: deps.redis,
      prefix,
      limits: {
        maxPerCustomer: p.maxPerCustomer,
        rateCustomer: p.rateCustomer,
        rateAddress: p.rateAddress,
        idempotencyTtlS: p.idempotencyTtlS,
        settleTimeoutMs: p.settleTimeoutMs,
        // The gate's TTLs (customer counts, limit-release markers) must outlast a hold, and an
        // extended hold lives up to its maximum lifetime.
        holdTtlMs: Math.max(p.holdTtlMs, p.holdMaxLifetimeMs),
      },
    }),
    orders,
    holds: new HoldsStore({ pool: deps.pool, orders }),
    writeBack: new WriteBackQueue(orders, {
      maxBatch: 200,
      maxConcurrent: Math.max(1, Math.min(4, p.pgPool - 1)),
      onBatch: (n, s) => deps.events?.writeBatch(n, s),
    }),
    waitingRoom: new WaitingRoomStore({
      redis: deps.redis,
      prefix,
      factor: p.waitingRoomFactor,
      fateTtlS: p.idempotencyTtlS,
      refusalTtlS: p.refusalTtlS,
      decideTimeoutMs: p.settleTimeoutMs,
      rates: { rateCustomer: p.rateCustomer, rateAddress: p.rateAddress },
    }),
    clock: { now: () => Date.now() },
    newId: randomUUID,
    logger: deps.logger.child({ component: 'purchase' }),
    config: p,
    ...(deps.events ? { events: deps.events } : {}),
  };
}
