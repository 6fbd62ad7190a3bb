/**
 * Drift between the Redis views and Postgres, pure. Postgres is the truth; a Redis row can be
 * missing, behind (stale), different at the same version (mismatch), or present for a row
 * Postgres no longer has. Redis *ahead* of a Postgres read is not drift: the read is a snapshot
 * and CDC may already have delivered newer changes.
 */
import { incomingFields, NO_INCOMING, type RowChange, type RowState, type SkuRows } from './fold.ts';

export type DriftKind = 'missing_in_redis' | 'stale' | 'mismatch' | 'missing_in_postgres';

export interface DriftItem {
  sku: string;
  locationId: string;
  kind: DriftKind;
  postgres: RowState | null;
  redis: RowState | null;
}

function sameQuantities(a: RowState, b: RowState): boolean {
  const x = incomingFields(a);
  const y = incomingFields(b);
  return (
    a.onHand === b.onHand && a.reserved === b.reserved && a.safetyStock === b.safetyStock &&
    x.incoming === y.incoming && x.backordered === y.backordered && x.nextEta === y.nextEta && x.policy === y.policy && x.limit === y.limit
  );
}

export function diffSku(sku: string, postgres: SkuRows, redis: SkuRows): DriftItem[] {
  const out: DriftItem[] = [];
  for (const [locationId, pg] of Object.entries(postgres)) {
    const r = redis[locationId];
    if (!r) out.push({ sku, locationId, kind: 'missing_in_redis', postgres: pg, redis: null });
    else if (r.version < pg.version || (r.version === pg.version && r.deleted)) out.push({ sku, locationId, kind: 'stale', postgres: pg, redis: r });
    else if (r.version === pg.version && !sameQuantities(r, pg)) out.push({ sku, locationId, kind: 'mismatch', postgres: pg, redis: r });
  }
  for (const [locationId, r] of Object.entries(redis)) {
    if (!r.deleted && !postgres[locationId]) out.push({ sku, locationId, kind: 'missing_in_postgres', postgres: null, redis: r });
  }
  return out;
}

/** The change that repairs an item, and whether it must overwrite at equal version. */
export function repairFor(item: DriftItem): { change: RowChange; force: boolean } {
  if (item.kind === 'missing_in_postgres') {
    const r = item.redis!;
    // A deletion of exactly what Redis holds: outranks it, loses to any newer change.
    return {
      change: { sku: item.sku, locationId: item.locationId, deleted: true, onHand: 0, reserved: 0, safetyStock: 0, version: r.version, commitTs: r.commitTs, ...NO_INCOMING },
      force: false,
    };
  }
  const pg = item.postgres!;
  return {
    change: { sku: item.sku, locationId: item.locationId, deleted: false, onHand: pg.onHand, reserved: pg.reserved, safetyStock: pg.safetyStock, version: pg.version, commitTs: pg.commitTs, ...incomingFields(pg) },
    force: item.kind === 'mismatch',
  };
}
