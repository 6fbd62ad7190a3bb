/**
 * The purchase gate's public face for the stream processor's maintenance (reconciliation, see
 * stream-processors/views-maintenance.ts): which SKUs have gate state, and a check (with
 * `repair`, a fix) of each SKU's gate terms against its hold records. Nothing else of the gate
 * is reachable from outside purchase/: how the check runs (purchase/lua/gate-check-4.lua) stays
 * purchase's business.
 */
import type { RedisClient } from '../lib/redis.ts';
import { Gate, type GateCheck } from './adapters/gate.ts';

export type { GateCheck };

export interface GateAudit {
  /** SKUs that have gate state, in pages (SCAN). */
  scanGateSkus(count?: number): AsyncGenerator<string[]>;
  /** Compares (and with `repair` fixes) each SKU's gate terms against its hold records. */
  check(skus: string[], repair: boolean): Promise<GateCheck[]>;
}

export function createGateAudit(deps: { redis: RedisClient; prefix: string }): GateAudit {
  const gate = new Gate({ redis: deps.redis, prefix: deps.prefix });
  return { scanGateSkus: (count) => gate.scanGateSkus(count), check: (skus, repair) => gate.check(skus, repair) };
}
