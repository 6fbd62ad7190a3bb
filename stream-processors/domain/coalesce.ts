/**
 * Coalescing, pure: which changes of a batch are applied in one script call and published as
 * one set of effects. A group is the run of one SKU's changes of ONE Postgres transaction
 * (same `txId`) within the batch, in CDC order.
 *
 * Why per transaction and not per SKU: the states between two changes of one transaction were
 * never committed (a 3-location ERP count shows, change by change, two states in which one
 * location has its new count and the others the old one; no reader of Postgres could ever see
 * them). The state after the transaction's last change is the committed one, so publishing only
 * that keeps `stock.deltas` "every committed availability change" — and makes it more exact.
 * States between two transactions were committed; they stay one group each.
 *
 * A change without a txId (rebuild rows, synthetic events) is never merged. Groups of one SKU
 * never interleave: a change joins only the SKU's latest group, so per-SKU order is kept.
 */
import type { RowChange } from './fold.ts';

/** Indices into `changes`, one array per group, groups in order of their first change. */
export function coalesceGroups(changes: ReadonlyArray<Pick<RowChange, 'sku' | 'txId'>>): number[][] {
  const groups: number[][] = [];
  const open = new Map<string, { txId: number | null | undefined; members: number[] }>();
  changes.forEach((c, i) => {
    const g = open.get(c.sku);
    if (g && c.txId != null && g.txId === c.txId) {
      g.members.push(i);
      return;
    }
    const members = [i];
    groups.push(members);
    open.set(c.sku, { txId: c.txId, members });
  });
  return groups;
}

/** The distinct locations a group changed, in order of first change: one delta each (consumers filter deltas by location). */
export function groupLocations(changes: ReadonlyArray<Pick<RowChange, 'locationId'>>): string[] {
  return [...new Set(changes.map((c) => c.locationId))];
}
