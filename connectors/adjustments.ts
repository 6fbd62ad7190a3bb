/**
 * The inbound connector's public face for other product folders: the gateway's HTTP twin of
 * `stock.adjustments` (gateway/adjustments-http.ts) validates an adjustment and applies it to
 * Postgres through the same rules and the same exactly-once ledger as the Kafka path. Nothing
 * else of the connector is reachable from outside connectors/: how adjustments are decided
 * (inbound/domain/) and written (inbound/adapters/pg-adjustments.ts) stays its business.
 */
import type pg from 'pg';
import { AdjustmentStore, type AppliedResult, type ApplyItem, type ApplyOutcome } from './inbound/adapters/pg-adjustments.ts';

export { validateAdjustment } from './inbound/domain/adjustment.ts';
export type { AppliedResult, ApplyItem, ApplyOutcome };

export interface AdjustmentApplier {
  /** Applies `items` in order in one transaction; one outcome per item, in the same order. */
  apply(items: readonly ApplyItem[]): Promise<ApplyOutcome[]>;
}

export function createAdjustmentApplier(deps: { pool: pg.Pool }): AdjustmentApplier {
  return new AdjustmentStore({ pool: deps.pool });
}
