/** Reads SKU states from the Redis views (for snapshots and HTTP reads). */
import type { RedisViews } from '../../stream-processors/adapters/redis-views.ts';
import { summarize } from '../../stream-processors/domain/fold.ts';
import type { SkuState } from '../domain/protocol.ts';

export async function readStates(views: RedisViews, skus: string[]): Promise<{ states: SkuState[]; unknown: string[] }> {
  const rows = await views.readRows(skus);
  const states: SkuState[] = [];
  const unknown: string[] = [];
  for (const sku of skus) {
    const r = rows.get(sku);
    if (!r) {
      unknown.push(sku);
      continue;
    }
    const s = summarize(sku, r);
    states.push({
      sku,
      available: s.available,
      onHand: s.onHand,
      reserved: s.reserved,
      safetyStock: s.safetyStock,
      version: s.version,
      deleted: s.deleted,
      commitTs: s.commitTs,
      locationsJson: JSON.stringify(s.locations),
    });
  }
  return { states, unknown };
}
